"""Fixtures of the operations tests: API servers with their own settings."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from pivotal_reporting.app import create_app
from pivotal_reporting.config import Settings
from tests.conftest import ServerThread

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def start_server(settings: Settings) -> Iterator[Callable[..., ServerThread]]:
    """Start an API server whose settings differ from the session's by ``overrides``."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> ServerThread:
            custom = settings.model_copy(update=overrides)
            return stack.enter_context(ServerThread(create_app(custom)))

        yield start


@pytest.fixture
def key_prefix() -> str:
    """A rate-limit namespace unique to this test, so runs never share a budget in Redis."""
    return f"pivotal-test-{secrets.token_hex(6)}"
