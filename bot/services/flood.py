"""Per-user throttling: who is sending faster than a person reasonably does."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta


class FloodGuard:
    """Counts each user's messages in a sliding window, in memory.

    :meth:`hit` records a message and says whether the user had already sent ``limit``
    messages within ``window`` before it. Users idle for a window are forgotten, so memory
    stays bounded by the users active in the last window.
    """

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[int, deque[datetime]] = {}
        self._lock = threading.Lock()
        self._swept = datetime.min

    def hit(self, user_id: int, now: datetime) -> bool:
        with self._lock:
            start = now - self.window
            times = self._seen.setdefault(user_id, deque())
            while times and times[0] <= start:
                times.popleft()
            flooding = len(times) >= self.limit
            times.append(now)
            if now.replace(tzinfo=None) - self._swept > self.window:
                self._sweep(start)
                self._swept = now.replace(tzinfo=None)
            return flooding

    def _sweep(self, start: datetime) -> None:
        for user_id in [u for u, t in self._seen.items() if not t or t[-1] <= start]:
            del self._seen[user_id]
