"""The one procrastinate App.

Tasks are registered by the modules listed in ``import_paths``; the connector is bound
to the resolved database URL at start-up with ``bind_queue``.
"""

from __future__ import annotations

import procrastinate

queue_app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(),
    import_paths=[
        "pivotal_reporting.exports.tasks",
        "pivotal_reporting.retention.tasks",
        "pivotal_reporting.reports.tasks",
    ],
)


def bind_queue(libpq_url: str, *, max_size: int = 5) -> procrastinate.App:
    """The queue app connected to ``libpq_url`` (open it with ``async with app.open_async()``)."""
    return queue_app.with_connector(
        procrastinate.PsycopgConnector(conninfo=libpq_url, min_size=1, max_size=max_size)
    )
