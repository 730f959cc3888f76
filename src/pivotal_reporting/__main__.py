"""``python -m pivotal_reporting`` runs the CLI."""

from pivotal_reporting.cli import app

app()
