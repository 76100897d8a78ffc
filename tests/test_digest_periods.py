"""The periods a digest covers: the last complete day, week or month, and the current one
so far, each compared with the right stretch before it."""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from bot.services.digest import digest_period

BERLIN = ZoneInfo("Europe/Berlin")
SERVICES = SimpleNamespace(tz=BERLIN)


def period(name: str, until: datetime):
    return digest_period(SERVICES, name, until)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "first", "last", "label"),
    [
        ("day", date(2027, 3, 30), date(2027, 3, 30), "Tue 30 Mar 2027"),
        ("week", date(2027, 3, 22), date(2027, 3, 28), "22 Mar – 28 Mar 2027"),
        ("month", date(2027, 2, 1), date(2027, 2, 28), "February 2027"),
        ("today", date(2027, 3, 31), date(2027, 3, 31), "Wed 31 Mar 2027, until 14:05"),
        ("thisweek", date(2027, 3, 29), date(2027, 3, 31), "29 Mar – 31 Mar 2027, until 14:05"),
        ("thismonth", date(2027, 3, 1), date(2027, 3, 31), "March 2027, until 14:05"),
    ],
)
def test_each_period_covers_the_days_it_names(name, first, last, label):
    current = period(name, datetime(2027, 3, 31, 14, 5, tzinfo=BERLIN))
    assert (current.first_day, current.last_day, current.label()) == (first, last, label)
    assert current.start == datetime.combine(first, datetime.min.time(), BERLIN)


def test_a_complete_period_is_compared_with_the_whole_one_before():
    january = period("month", datetime(2027, 2, 10, tzinfo=BERLIN))
    december = january.previous(SERVICES)  # type: ignore[arg-type]
    assert (december.first_day, december.last_day) == (date(2026, 12, 1), date(2026, 12, 31))
    assert december.end == january.start


def test_a_period_so_far_is_compared_with_the_same_stretch_before():
    now = datetime(2027, 3, 31, 14, 5, tzinfo=BERLIN)
    today = period("today", now).previous(SERVICES)  # type: ignore[arg-type]
    assert (today.start, today.end) == (
        datetime(2027, 3, 30, tzinfo=BERLIN),
        datetime(2027, 3, 30, 14, 5, tzinfo=BERLIN),
    )
    # 30 days and 14 hours into March; February has 28 days: all of February
    month = period("thismonth", now).previous(SERVICES)  # type: ignore[arg-type]
    assert (month.start, month.end) == (
        datetime(2027, 2, 1, tzinfo=BERLIN),
        datetime(2027, 3, 1, tzinfo=BERLIN),
    )
    early = period("thismonth", datetime(2027, 3, 3, 9, tzinfo=BERLIN))
    assert early.previous(SERVICES).end == datetime(2027, 2, 3, 9, tzinfo=BERLIN)  # type: ignore[arg-type]


def test_an_unknown_period_is_refused():
    with pytest.raises(ValueError, match="period must be one of"):
        period("year", datetime(2027, 3, 31, tzinfo=BERLIN))
