"""The README and docs/ stand alone: no pointer outside the repository, links that
resolve, commands that run in a fresh shell, and demo facts that match the demo data."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from pivotal_reporting.demo.catalog import (
    ACCESS_LEVELS,
    DEMO_ORG_ID,
    FIRST_MONDAY,
    PROFILES,
    WORKING_DAYS,
)
from pivotal_reporting.demo.loader import DEFAULT_ORGS

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")
BASH_BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_pointer_outside_the_repository(page: Path) -> None:
    text = page.read_text()
    for outside in ("../shared", "DESIGN.md", "team workspace", "the spec", "spec's"):
        assert outside not in text, f"{page.name} refers to {outside!r}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    for target, anchor in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        linked = (page.parent / target).resolve()
        assert linked.is_file(), f"{page.name} links to missing {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.MULTILINE)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor[1:] in slugs, f"{page.name} links to missing {target}{anchor}"


def _commands(block: str) -> list[list[str]]:
    """The words of each simple command in a bash block (comments and continuations joined)."""
    text = re.sub(r"\\\n", " ", block)
    text = "\n".join(line.split(" #")[0] for line in text.splitlines() if not line.startswith("#"))
    commands = []
    for segment in re.split(r"&&|\|\||[;|\n]|\$\(", text):
        words = [w for w in segment.split() if not re.match(r"^[A-Z_]+=", w)]
        if words:
            commands.append(words)
    return commands


def test_readme_commands_run_in_a_fresh_shell() -> None:
    """Programs of the virtual environment are called by path; only venv creation is bare."""
    commands = [c for block in BASH_BLOCK.findall(README.read_text()) for c in _commands(block)]
    assert commands
    for words in commands:
        program = words[0]
        if program == "python3":
            assert words[1:3] == ["-m", "venv"], words
        else:
            assert program.split("/")[-1] not in {
                "pivotal-reporting",
                "python",
                "pip",
                "pytest",
            } or (program.startswith(".venv/bin/")), words


def test_readme_states_the_demo_date_range() -> None:
    last_day, working = FIRST_MONDAY, 1
    while working < WORKING_DAYS:
        last_day += timedelta(days=1)
        working += last_day.weekday() < 5
    text = README.read_text()
    assert f"Monday {FIRST_MONDAY.isoformat()}" in text
    assert f"Friday {last_day.isoformat()}" in text


def test_readme_lists_the_demo_users_and_organizations() -> None:
    text = README.read_text()
    slug = DEMO_ORG_ID.removeprefix("org_")
    for (suffix, _, permissions), person in zip(ACCESS_LEVELS, PROFILES[0].people, strict=True):
        row = next(line for line in text.splitlines() if f"`usr_{slug}_{suffix}`" in line)
        assert person in row
        for permission in permissions:
            assert f"`{permission}`" in row
    for profile in PROFILES[:DEFAULT_ORGS]:
        row = next(line for line in text.splitlines() if f"`org_{profile.slug}`" in line)
        assert profile.timezone in row
        assert profile.base_currency in row


def test_readme_indexes_every_docs_page() -> None:
    """Each docs/*.md has a line in the README's documentation index, and no line is stale."""
    text = README.read_text()
    index = text[text.index("## Documentation") : text.index("## The two commands")]
    listed = set(re.findall(r"\]\((docs/[\w\-]+\.md)\)", index))
    pages = {f"docs/{page.name}" for page in (REPO / "docs").glob("*.md")}
    assert listed == pages


def test_readme_configuration_names_every_setting() -> None:
    """Every ``PIVOTAL_*`` setting of config.py appears in the README's Configuration section."""
    from pivotal_reporting.config import Settings

    text = README.read_text()
    section = text[text.index("## Configuration") : text.index("## Authentication and permissions")]
    missing = [
        f"PIVOTAL_{name.upper()}"
        for name in Settings.model_fields
        if f"`PIVOTAL_{name.upper()}`" not in section
    ]
    assert missing == []
