"""The replica settings and the rules that decide whether a replica may answer (no server)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from pivotal_reporting.config import Settings
from pivotal_reporting.replica import ReadSnapshot, refusal, replica_policy

REPLAYED = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_no_read_url_means_every_read_on_the_primary() -> None:
    assert replica_policy(Settings(read_database_url="")) is None


def test_the_policy_carries_the_settings() -> None:
    settings = Settings(
        read_database_url="postgresql://reader@replica/pivotal",
        read_max_lag_seconds=2.5,
        read_fallback="unavailable",
    )
    policy = replica_policy(settings)
    assert policy is not None
    assert (policy.url, policy.max_lag_seconds, policy.fallback) == (
        "postgresql://reader@replica/pivotal",
        2.5,
        "unavailable",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("read_fallback", "sometimes"), ("read_max_lag_seconds", 0), ("read_max_lag_seconds", -1)],
)
def test_bad_replica_settings_fail_fast(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})  # type: ignore[arg-type]


def test_a_caught_up_replica_answers_even_if_its_last_commit_is_old() -> None:
    state = {"in_recovery": True, "replayed_at": REPLAYED, "lag_seconds": 0.0}
    assert refusal(state, max_lag_seconds=1) is None


def test_a_replica_behind_the_limit_is_refused_as_lagging() -> None:
    state = {"in_recovery": True, "replayed_at": REPLAYED, "lag_seconds": 7.25}
    refused = refusal(state, max_lag_seconds=5)
    assert refused is not None
    assert refused.reason == "lagging"
    assert "7.2 s behind" in str(refused)
    assert isinstance(refused, ConnectionError)  # a queued export retries it


def test_a_replica_that_replayed_nothing_yet_has_no_instant_and_is_refused() -> None:
    state = {"in_recovery": True, "replayed_at": None, "lag_seconds": None}
    refused = refusal(state, max_lag_seconds=30)
    assert refused is not None
    assert refused.reason == "not_ready"


def test_a_promoted_server_is_read_as_a_primary() -> None:
    state = {"in_recovery": False, "replayed_at": None, "lag_seconds": 0.0}
    assert refusal(state, max_lag_seconds=1) is None


def test_the_server_label_comes_from_recovery_not_from_the_pool() -> None:
    assert ReadSnapshot(REPLAYED, on_replica=True, in_recovery=True).server == "replica"
    assert ReadSnapshot(REPLAYED, on_replica=True, in_recovery=False).server == "primary"
