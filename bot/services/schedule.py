"""When scheduled jobs are due, in the business's time zone. Pure date arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Schedule:
    """Every day at ``at`` (local time), or weekly on ``weekday`` (0 = Monday) at ``at``."""

    at: time
    weekday: int | None = None

    def describe(self) -> str:
        when = self.at.strftime("%H:%M")
        if self.weekday is None:
            return f"daily at {when}"
        return f"every {WEEKDAYS[self.weekday].capitalize()} at {when}"

    def _moment(self, day: date, tz: ZoneInfo) -> datetime:
        return datetime.combine(day, self.at, tz).astimezone(UTC)

    def last_due(self, now: datetime, tz: ZoneInfo) -> datetime:
        """The most recent scheduled moment at or before ``now`` (aware, UTC)."""
        day = now.astimezone(tz).date()
        for back in range(8):
            candidate_day = day - timedelta(days=back)
            if self.weekday is not None and candidate_day.weekday() != self.weekday:
                continue
            moment = self._moment(candidate_day, tz)
            if moment <= now:
                return moment
        raise AssertionError("unreachable: a week always contains the weekday")

    def next_due(self, now: datetime, tz: ZoneInfo) -> datetime:
        """The first scheduled moment strictly after ``now`` (aware, UTC)."""
        day = now.astimezone(tz).date()
        for ahead in range(9):
            candidate_day = day + timedelta(days=ahead)
            if self.weekday is not None and candidate_day.weekday() != self.weekday:
                continue
            moment = self._moment(candidate_day, tz)
            if moment > now:
                return moment
        raise AssertionError("unreachable: a week always contains the weekday")


def parse_time(text: str) -> time:
    """``"08:30"`` → ``time(8, 30)``; raises ValueError with a clear message."""
    try:
        hours, minutes = (int(p) for p in text.strip().split(":"))
        return time(hours, minutes)
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day like 08:30") from None


def parse_weekday(text: str) -> int:
    key = text.strip().lower()[:3]
    if key not in WEEKDAYS:
        raise ValueError(f"{text!r} is not a weekday (mon, tue, ... sun)")
    return WEEKDAYS.index(key)
