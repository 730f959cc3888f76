"""``GET /v1/events``: the caller's live updates as Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from pivotal_reporting.auth.dependencies import require
from pivotal_reporting.auth.principal import VIEW_REPORTS, Principal
from pivotal_reporting.errors import problem_responses
from pivotal_reporting.events.broker import EventBroker

router = APIRouter(prefix="/v1", tags=["events"])

KEEPALIVE_SECONDS = 15.0
# A stream ends after this long; EventSource reconnects by itself and the page reloads
# what it shows. uvicorn waits for open responses when it shuts down: this bounds the
# wait (``serve`` also sets a graceful-shutdown timeout).
STREAM_SECONDS = 60.0


@router.get(
    "/events",
    summary="Live updates: your export jobs' progress and your organization's changed figures",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        **problem_responses(401, 403, 429, 503),
    },
)
async def stream_events(
    request: Request, principal: Annotated[Principal, Depends(require(VIEW_REPORTS))]
) -> StreamingResponse:
    broker: EventBroker = request.app.state.event_broker
    subscriber = broker.subscribe(principal.organization_id, principal.user_id)

    async def events() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_SECONDS
        try:
            yield "retry: 2000\nevent: ready\ndata: {}\n\n"
            while loop.time() < ends:
                try:
                    event = await asyncio.wait_for(subscriber.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                kind = str(event.get("kind", "message"))
                public = {k: v for k, v in event.items() if k not in {"org", "user"}}
                yield f"event: {kind}\ndata: {json.dumps(public)}\n\n"
        finally:
            broker.unsubscribe(subscriber)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"},
    )
