"""Exact caching of summaries ("caching for frequently accessed reports").

A cached summary is served only while the data behind it is unchanged, never a stale
figure. Each entry is keyed by what the figures depend on:

- the organization, report, time zone and base currency (the caller's context), and
  the normalized filters;
- the **data version** read in the summary's own snapshot (one cheap statement):
  ``count(rollup_changes) + rollup_changes_consumed.consumed`` of the organization and
  report (migration 0009), which every committed write to the report's source rows
  raises (the statement triggers of migration 0007 log it) and which nothing lowers
  (a refresh moves the rows it consumes into ``consumed``); and the organization's
  names version (``rollup_name_versions``, bumped by renaming or deleting a customer,
  project or user, whose names the summaries publish).

An entry is stored under the versions read in the snapshot the summary was computed
in, and looked up under the versions of the asking request's snapshot: equal versions
mean no committed change between the two snapshots, so the figures are the same.

What is cached is a report's ``clock_free_part`` (base.py): the whole summary for a
report whose figures do not age, and for one whose do (days outstanding of open
invoices without an explicit ``asOf``, the ages of pending time approvals) what they are
derived from; ``with_clock`` derives them from it at each request, so a hit still shows
figures as of that request's instant. A part that depends on the current date is kept
for that date (``Report.cache_scope``: the invoices overdue today); one that depends on
the current instant (``Report.depends_on_now``: the open invoices in a days-outstanding
bucket as of now) is not cached at all.

A field that ``with_clock`` copies from the part unchanged (the customer breakdowns)
is also kept as the JSON text it was first written as (``encoded``), so that a hit does
not write ten thousand customers again.

The cache is per process, a LRU bounded in entries and in breakdown items held; with
several API workers each keeps its own.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pivotal_reporting.reports.base import Report, ReportContext, ReportFilters, fetch_one
from pivotal_reporting.reports.schemas import EncodedJSON, encode_json

MAX_ENTRIES = 512
# Bound on the breakdown items held (a payments summary over 10,000 customers holds
# 10,000): about a hundred such summaries, or hundreds of small ones, per process.
MAX_ITEMS = 1_000_000

# ``{org}``, ``{report}``: literals (the one-message hit of service.py) or bound.
VERSIONS_QUERY = """
SELECT (SELECT count(*) FROM rollup_changes
        WHERE organization_id = {org} AND report_type = {report})
     + coalesce((SELECT consumed FROM rollup_changes_consumed
                 WHERE organization_id = {org} AND report_type = {report}), 0)
       AS data_version,
       coalesce((SELECT version FROM rollup_name_versions
                 WHERE organization_id = {org}), 0) AS names_version
"""
_VERSIONS_SQL = VERSIONS_QUERY.format(org="%(org)s", report="%(report)s")

CacheKey = tuple[str, ...]


class SummaryCache:
    """A bounded LRU of summaries keyed by their inputs and data versions."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_items: int = MAX_ITEMS) -> None:
        # key → (part, items held, the JSON text of fields copied from the part)
        self._entries: OrderedDict[CacheKey, tuple[Any, int, dict[str, EncodedJSON]]] = (
            OrderedDict()
        )
        self._max_entries = max_entries
        self._max_items = max_items
        self._items = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def cacheable(self, report: Report[Any], filters: ReportFilters) -> bool:
        return self._max_entries > 0 and not report.depends_on_now(filters)

    async def key(
        self, session: AsyncSession, report: Report[Any], ctx: ReportContext, filters: ReportFilters
    ) -> CacheKey | None:
        """The key for this request in ``session``'s snapshot; ``None``: do not cache."""
        if not self.cacheable(report, filters):
            return None
        versions = await fetch_one(
            session, _VERSIONS_SQL, {"org": ctx.organization_id, "report": report.report_type}
        )
        assert versions is not None
        return self.key_at(versions, report, ctx, filters)

    def key_at(
        self,
        versions: dict[str, Any],
        report: Report[Any],
        ctx: ReportContext,
        filters: ReportFilters,
    ) -> CacheKey:
        """The key under the versions (``VERSIONS_QUERY``) read in the request's snapshot."""
        normalized = json.dumps(
            filters.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=True
        )
        return (
            ctx.organization_id,
            report.report_type,
            ctx.timezone,
            ctx.base_currency,
            normalized,
            report.cache_scope(ctx, filters),
            str(versions["data_version"]),
            str(versions["names_version"]),
        )

    def get(self, key: CacheKey | None, *, count_miss: bool = True) -> Any:
        """The part kept under ``key``, or ``None`` (counted as a miss if ``count_miss``)."""
        if key is None:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += count_miss
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: CacheKey | None, summary: Any) -> None:
        if key is None:
            return
        items = _items(summary)
        if items > self._max_items:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._items -= previous[1]
            self._entries[key] = (summary, items, {})
            self._items += items
            while len(self._entries) > self._max_entries or self._items > self._max_items:
                _, (_, evicted, _) = self._entries.popitem(last=False)
                self._items -= evicted

    def encoded(self, key: CacheKey | None, field: str, value: Callable[[], Any]) -> EncodedJSON:
        """``value()`` as JSON text: kept with the entry of ``key`` and reused for as long
        as the entry lives. Only for a summary field ``with_clock`` takes unchanged from
        the cached part, so that every answer from that part has the same value."""
        with self._lock:
            entry = self._entries.get(key) if key is not None else None
            if entry is not None and field in entry[2]:
                return entry[2][field]
        text = EncodedJSON(encode_json(value()))
        if entry is not None:
            with self._lock:
                entry[2][field] = text
        return text

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._items = 0


def _items(part: Any) -> int:
    """1 plus the items of the breakdowns (dicts, lists) a cached part holds: a summary
    model or dict, or a report's own dataclass of rows."""
    fields = part if isinstance(part, dict) else vars(part)
    items = 1
    for value in fields.values():
        if isinstance(value, dict | list):
            items += len(value)
        elif hasattr(value, "__dict__"):  # a summary model inside a report's part
            items += _items(value) - 1
    return items


SUMMARIES = SummaryCache()
