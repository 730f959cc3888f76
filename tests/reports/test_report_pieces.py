"""Pure pieces of the reports package: buckets, percentages, calendar windows, JSON."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from pivotal_reporting.reports import invoice_settlement_time, payments_received, quote_cycle_time
from pivotal_reporting.reports.schemas import distribution, encode_json
from pivotal_reporting.reports.sql import first_date_from


def test_bucket_labels_are_the_specs_plus_an_open_end() -> None:
    assert [b.label for b in quote_cycle_time.BUCKETS] == [
        "0-1 days",
        "2-3 days",
        "4-7 days",
        "8-14 days",
        "15-30 days",
        "31+ days",
    ]
    assert [b.label for b in invoice_settlement_time.BUCKETS][-2:] == ["61-90 days", "91+ days"]
    assert [b.label for b in payments_received.BUCKETS] == [
        "$0-$1,000",
        "$1,001-$5,000",
        "$5,001-$10,000",
        "$10,001-$25,000",
        "$25,001-$50,000",
        "$50,001+",
    ]


@pytest.mark.parametrize(
    "counts",
    [
        [1, 1, 1],
        [1, 1, 1, 1, 1, 1],
        [2, 1, 0, 0, 0, 3],
        [1, 0, 0, 0, 0, 0],
        [7, 13, 29, 1, 0, 50],
        [0, 0, 0, 0, 0, 0],
    ],
)
def test_percentages_add_up_and_stay_within_a_tenth(counts: list[int]) -> None:
    buckets = quote_cycle_time.BUCKETS[: len(counts)]
    result = distribution(buckets, counts)
    shares = [b.percentage for b in result]
    total = sum(counts)
    assert all(share.as_tuple().exponent == -1 for share in shares)
    if total:
        assert sum(shares) == Decimal(100)
        for share, count in zip(shares, counts, strict=True):
            assert abs(share - Decimal(count * 100) / total) < Decimal("0.1")
    else:
        assert set(shares) == {Decimal("0.0")}


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        (datetime(2024, 3, 1, tzinfo=UTC), "UTC", date(2024, 3, 1)),
        (datetime(2024, 3, 1, 0, 0, 1, tzinfo=UTC), "UTC", date(2024, 3, 2)),
        (datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), "UTC", date(2025, 1, 1)),
        (datetime(2024, 3, 1, 5, tzinfo=UTC), "America/New_York", date(2024, 3, 1)),
        (datetime(2024, 3, 1, tzinfo=UTC), "America/New_York", date(2024, 3, 1)),  # 29 Feb 19:00
        (datetime(2024, 3, 1, tzinfo=UTC), "Europe/Berlin", date(2024, 3, 2)),  # 1 Mar 01:00
    ],
)
def test_calendar_window_bounds(instant: datetime, zone: str, expected: date) -> None:
    assert first_date_from(instant, zone) == expected


def test_decimals_are_json_numbers_with_their_scale() -> None:
    text = encode_json({"a": Decimal("125000.00"), "b": [Decimal("4.2"), None, True], "c": 'x"y'})
    assert text == '{"a":125000.00,"b":[4.2,null,true],"c":"x\\"y"}'
    assert json.loads(text, parse_float=Decimal)["a"] == Decimal("125000.00")
    with pytest.raises(ValueError, match="non-finite"):
        encode_json(Decimal("NaN"))
