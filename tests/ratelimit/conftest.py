"""Fixtures of the rate-limit tests."""

from __future__ import annotations

import secrets

import pytest


@pytest.fixture
def key_prefix() -> str:
    """A rate-limit namespace unique to this test, so runs never share a budget in Redis."""
    return f"pivotal-test-{secrets.token_hex(6)}"
