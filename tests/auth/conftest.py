"""One ``oidc-provider-mock`` process for the whole session (it starts in seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth.oidc_servers import MockProvider


@pytest.fixture(scope="session")
def provider() -> Iterator[MockProvider]:
    with MockProvider() as server:
        yield server
