"""Pivotal Flow Reporting: compliance summaries and governed exports."""

__version__ = "0.1.0"
