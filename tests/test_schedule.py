"""When scheduled jobs are due, in local time, across days, weeks and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.services.schedule import Schedule, parse_time, parse_weekday

BERLIN = ZoneInfo("Europe/Berlin")


def test_daily_last_and_next_due_in_local_time():
    schedule = Schedule(time(8, 0))
    now = datetime(2026, 11, 29, 6, 30, tzinfo=UTC)  # 07:30 in Berlin
    assert schedule.last_due(now, BERLIN) == datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    assert schedule.next_due(now, BERLIN) == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    exactly = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    assert schedule.last_due(exactly, BERLIN) == exactly
    assert schedule.next_due(exactly, BERLIN) == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


def test_weekly_on_monday():
    schedule = Schedule(time(8, 30), weekday=0)
    sunday = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert schedule.last_due(sunday, UTC) == datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    assert schedule.next_due(sunday, UTC) == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
    assert "Mon" in schedule.describe()


def test_local_time_is_kept_across_a_dst_change():
    schedule = Schedule(time(8, 0))
    before = schedule.last_due(datetime(2026, 3, 28, 12, 0, tzinfo=UTC), BERLIN)
    after = schedule.last_due(datetime(2026, 3, 29, 12, 0, tzinfo=UTC), BERLIN)
    assert before.hour == 7 and after.hour == 6  # 08:00 CET, then 08:00 CEST


@pytest.mark.parametrize("text", ["8", "25:00", "ab:cd", ""])
def test_bad_times_are_explained(text):
    with pytest.raises(ValueError, match="time of day"):
        parse_time(text)


def test_weekdays():
    assert parse_weekday("Monday") == 0 and parse_weekday("sun") == 6
    with pytest.raises(ValueError, match="weekday"):
        parse_weekday("someday")
