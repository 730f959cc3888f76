"""A real S3-protocol server for the tests: moto's server app over HTTP on a loopback port.

It is moto's own server (``ThreadedMotoServer`` builds it the same way) behind one WSGI
layer that can answer chosen requests with a 500, so a test can make an upload fail
half-way through, over the wire, like a real outage. Clients reach it only over HTTP with
the standard AWS environment (``AWS_ENDPOINT_URL``, ``AWS_REGION``, keys), set for the
whole test session.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import boto3
import pytest

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

Environ = dict[str, Any]
INJECTED_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b"<Error><Code>InternalError</Code><Message>injected by the test</Message></Error>"
)


@dataclass
class Faults:
    """Requests the server answers with 500 InternalError while a rule matches them."""

    rules: list[Callable[[Environ], bool]] = field(default_factory=list)
    hits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_upload_parts(self, path_pattern: str, from_part: int = 2) -> None:
        """Fail UploadPart of objects whose path matches ``path_pattern`` from ``from_part`` on."""

        def rule(environ: Environ) -> bool:
            query = parse_qs(environ.get("QUERY_STRING", ""))
            return (
                environ["REQUEST_METHOD"] == "PUT"
                and re.search(path_pattern, environ["PATH_INFO"]) is not None
                and "uploadId" in query
                and int(query.get("partNumber", ["0"])[0]) >= from_part
            )

        self.rules.append(rule)

    def clear(self) -> None:
        self.rules.clear()

    def matches(self, environ: Environ) -> bool:
        with self.lock:
            if any(rule(environ) for rule in self.rules):
                self.hits += 1
                return True
        return False


@dataclass
class S3Server:
    endpoint: str
    faults: Faults

    def client(self) -> S3Client:
        return boto3.client("s3", endpoint_url=self.endpoint)

    def new_bucket(self) -> str:
        name = f"pivotal-test-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=name)
        return name


def _app(faults: Faults) -> Callable[[Environ, Callable[..., Any]], Iterable[bytes]]:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if faults.matches(environ):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"].read(length)  # drain the part, as a server would
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(INJECTED_ERROR)))],
            )
            return [INJECTED_ERROR]
        result: Iterable[bytes] = moto_app(environ, start_response)
        return result

    return app


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 on 127.0.0.1:<free port>, with the AWS environment pointing at it."""
    # Imported here: a test run that needs no S3 doesn't pay for loading moto.
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    faults = Faults()
    server = make_server(
        "127.0.0.1", 0, _app(faults), threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", endpoint)
        patch.setenv("AWS_REGION", "us-east-1")
        patch.setenv("AWS_ACCESS_KEY_ID", "test-key")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
        patch.delenv("AWS_PROFILE", raising=False)
        yield S3Server(endpoint, faults)
    server.shutdown()
    thread.join(timeout=10)
