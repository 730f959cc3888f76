"""One LISTEN connection per API process, fanned out to subscribers per organization.

Migration 0008's triggers ``NOTIFY pivotal_events`` with a small JSON payload: export
job changes (``kind: export``, delivered only to the job's owner) and rollup change-log
writes (``kind: figures``, delivered to everyone of the organization). A subscriber is
one open ``/v1/events`` stream; a slow one loses events rather than holding others up.
After a lost connection the broker reconnects and sends ``kind: resync`` so pages reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

log = logging.getLogger(__name__)

CHANNEL = "pivotal_events"
QUEUE_SIZE = 256


@dataclass(eq=False)
class Subscriber:
    organization_id: str
    user_id: str
    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE)
    )

    def wants(self, event: dict[str, Any]) -> bool:
        if event.get("org") != self.organization_id:
            return False
        return event.get("kind") != "export" or event.get("user") == self.user_id


class EventBroker:
    def __init__(self, url: str) -> None:
        self.url = url
        self.subscribers: set[Subscriber] = set()
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-broker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self, organization_id: str, user_id: str) -> Subscriber:
        subscriber = Subscriber(organization_id, user_id)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def dispatch(self, event: dict[str, Any]) -> None:
        for subscriber in list(self.subscribers):
            if event.get("kind") == "resync" or subscriber.wants(event):
                with contextlib.suppress(asyncio.QueueFull):
                    subscriber.queue.put_nowait(event)

    async def _run(self) -> None:
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    if not first:
                        self.dispatch({"kind": "resync"})
                    first = False
                    async for notify in conn.notifies():
                        try:
                            event = json.loads(notify.payload)
                        except ValueError:
                            continue
                        if isinstance(event, dict):
                            self.dispatch(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.listening.clear()
                log.warning("event listener lost its connection; reconnecting", exc_info=True)
                await asyncio.sleep(1)


@contextlib.asynccontextmanager
async def running_broker(url: str) -> AsyncIterator[EventBroker]:
    broker = EventBroker(url)
    broker.start()
    try:
        yield broker
    finally:
        await broker.stop()
