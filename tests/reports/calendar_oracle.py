"""An independent model of local days, from zoneinfo alone (no code under test).

``midnight_transitions`` scans every IANA zone for the UTC offset changes (1970-2037)
whose jump touches a local midnight: a midnight that happens twice (clocks back over
it), never (clocks forward over it), or at the very instant of the change. Between two
changes the offset is constant, so the first instant of a local date is found exactly by
looking at each constant-offset segment around it (``day_start``): no search over
instants, no ``fold`` rules.
"""

from __future__ import annotations

import functools
import itertools
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

YEARS = (1970, 2038)  # [from, to): the scan stays fast and inside the 64-bit Unix era
_STEP = timedelta(days=7)  # two changes within a week are rare; each is found exactly


@dataclass(frozen=True)
class Transition:
    zone: str
    instant: datetime  # UTC, the first instant at the new offset
    before: timedelta
    after: timedelta

    @property
    def local_before(self) -> datetime:
        return (self.instant + self.before).replace(tzinfo=None)

    @property
    def local_after(self) -> datetime:
        return (self.instant + self.after).replace(tzinfo=None)

    @property
    def midnight_dates(self) -> list[date]:
        """The dates whose midnight the jump passes over or lands on."""
        low, high = sorted((self.local_before, self.local_after))
        days = [low.date() + timedelta(days=k) for k in range((high.date() - low.date()).days + 1)]
        return [d for d in days if low <= datetime.combine(d, time()) <= high]


def _offset(zone: zoneinfo.ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


@functools.cache
def transitions(zone_name: str) -> tuple[Transition, ...]:
    """Every offset change of the zone in ``YEARS``, to the second."""
    zone = zoneinfo.ZoneInfo(zone_name)
    found = []
    cursor = datetime(YEARS[0], 1, 1, tzinfo=UTC)
    end = datetime(YEARS[1], 1, 1, tzinfo=UTC)
    previous = _offset(zone, cursor)
    while cursor < end:
        following = cursor + _STEP
        offset = _offset(zone, following)
        if offset != previous:
            low, high = cursor, following  # offset(low) == previous != offset(high)
            while high - low > timedelta(seconds=1):
                middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
                if _offset(zone, middle) == previous:
                    low = middle
                else:
                    high = middle
            found.append(Transition(zone_name, high, previous, _offset(zone, high)))
        previous, cursor = offset, following
    return tuple(found)


@functools.cache
def midnight_transitions() -> dict[str, tuple[Transition, ...]]:
    """Zone → its offset changes that touch a local midnight, for every zone that has one.

    Links that are copies of another zone (same changes) are kept once, under the first
    name in alphabetical order.
    """
    zones: dict[str, tuple[Transition, ...]] = {}
    seen: set[tuple[tuple[datetime, timedelta, timedelta], ...]] = set()
    for name in sorted(zoneinfo.available_timezones()):
        if name.startswith(("posix/", "right/")) or name == "localtime":
            continue
        changes = transitions(name)
        touching = tuple(t for t in changes if t.midnight_dates)
        if not touching:
            continue
        signature = tuple((t.instant, t.before, t.after) for t in changes)
        if signature in seen:
            continue
        seen.add(signature)
        zones[name] = touching
    return zones


def day_start(day: date, zone_name: str) -> datetime:
    """The first instant whose local date is ``day`` or later (UTC).

    Within a segment of constant offset ``o`` starting at ``lo`` (a change or the scan
    start) the first such instant is ``max(lo, midnight - o)``, if it lies before the
    segment's end; the answer is the earliest over the segments.
    """
    zone = zoneinfo.ZoneInfo(zone_name)
    midnight = datetime.combine(day, time(), tzinfo=UTC)
    window_lo, window_hi = midnight - timedelta(days=3), midnight + timedelta(days=3)
    cuts = [t.instant for t in transitions(zone_name) if window_lo < t.instant < window_hi]
    bounds = [window_lo, *cuts, window_hi]
    for lo, hi in itertools.pairwise(bounds):
        offset = _offset(zone, lo)
        first = max(lo, midnight - offset)
        if first < hi:
            return first
    raise AssertionError(f"no day start for {day} in {zone_name}")


def first_day_from(instant: datetime, zone_name: str) -> date:
    """The earliest local date whose day starts at or after ``instant``."""
    day = instant.astimezone(zoneinfo.ZoneInfo(zone_name)).date() - timedelta(days=3)
    while day_start(day, zone_name) < instant:
        day += timedelta(days=1)
    return day


def local_month(instant: datetime, zone_name: str) -> str:
    """``YYYY-MM`` of the local date of ``instant``."""
    return instant.astimezone(zoneinfo.ZoneInfo(zone_name)).strftime("%Y-%m")
