"""Saved export templates: ``/v1/reports/export-templates`` (see docs/export-formats.md)."""
