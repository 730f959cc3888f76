"""The report catalog: ``base.py`` holds the contract, one module per report type."""
