"""Refuse request bodies over ``MAX_BODY_BYTES`` with 413 problem+json, before parsing.

A declared ``Content-Length`` over the limit is answered at once; a body without one
(chunked) is read into memory up to the limit and refused once it passes it, so no
request can make the server hold more than the limit.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pivotal_reporting.errors import MAX_BODY_BYTES, PayloadTooLarge, problem_response

_DETAIL = f"The request body is larger than {MAX_BODY_BYTES} bytes."


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            response = problem_response(
                413, _DETAIL, code=PayloadTooLarge.code, instance=scope["path"]
            )
            await response(scope, receive, send)
            return
        # Read the whole (small) body first, so that an oversized one is refused here
        # rather than half-way through parsing; the app then reads it from memory.
        messages: list[Message] = []
        received = 0
        more_body = scope["method"] not in ("GET", "HEAD", "DELETE", "OPTIONS")
        while more_body:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                response = problem_response(
                    413, _DETAIL, code=PayloadTooLarge.code, instance=scope["path"]
                )
                await response(scope, receive, send)
                return
            more_body = message.get("more_body", False)

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)
