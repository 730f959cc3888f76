"""Settings: typed, from PIVOTAL_* variables, refusing unsafe production defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pivotal_reporting.config import Settings


def test_reads_pivotal_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIVOTAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PIVOTAL_RATE_LIMIT_PER_MINUTE", "50")
    monkeypatch.setenv("PIVOTAL_DATABASE_URL", "")
    settings = Settings()
    assert settings.data_dir == tmp_path
    assert settings.rate_limit_per_minute == 50
    assert settings.database_url is None
    assert settings.exports_path == tmp_path / "exports"


def test_bad_value_fails_with_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIVOTAL_RATE_LIMIT_PER_MINUTE", "lots")
    with pytest.raises(ValidationError, match="rate_limit_per_minute"):
        Settings()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"database_url": "postgresql://db/x"}, "PIVOTAL_JWT_SECRET"),
        ({"database_url": "postgresql://db/x", "jwt_secret": "short"}, "PIVOTAL_JWT_SECRET"),
        ({"jwt_secret": "s" * 40}, "PIVOTAL_DATABASE_URL"),
    ],
)
def test_production_refuses_unsafe_defaults(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(env="production", **overrides)  # type: ignore[arg-type]


def test_production_accepts_explicit_secret_and_database() -> None:
    settings = Settings(env="production", database_url="postgresql://db/x", jwt_secret="s" * 40)  # type: ignore[arg-type]
    assert settings.resolved_jwt_secret() == "s" * 40


def test_dev_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).resolved_jwt_secret()
    second = Settings(data_dir=tmp_path).resolved_jwt_secret()
    assert first == second
    assert len(first) >= 48
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o777 == 0o600
    assert Settings(data_dir=tmp_path / "other").resolved_jwt_secret() != first
