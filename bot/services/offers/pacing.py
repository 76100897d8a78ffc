"""Pacing proactive messages to Telegram's limits: at most 1 message per second to a chat
and at most 25 per second overall (Telegram allows about 30; python-telegram-bot's
``AIORateLimiter`` does not enforce the per-chat limit at all).

:func:`pace` is a pure scheduler. Time is cut into slots of 1/25 s with one message per
slot, so no window of one second holds more than 25; a chat's next message goes at least
25 slots (one second) after its previous one. Each message takes the earliest free slot its
chat allows, so one busy chat does not hold up the others; a chat's messages keep their
order.

:func:`send_paced` runs a schedule with an injected clock and sleep: tests pass a fake
clock and never sleep, the bot passes ``time.monotonic`` and ``asyncio.sleep``. A send that
takes longer than its slot only delays the later ones, never brings them forward.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    per_second: int = 25  # messages per second overall
    per_chat_seconds: float = 1.0  # at least this long between two messages to one chat

    @property
    def slot(self) -> float:
        """Seconds per slot."""
        return 1.0 / self.per_second

    @property
    def chat_gap_slots(self) -> int:
        """Slots between two messages to one chat (rounded up: never faster)."""
        return max(1, math.ceil(round(self.per_chat_seconds * self.per_second, 6)))


TELEGRAM = Limits()


@dataclass(frozen=True)
class Paced(Generic[T]):
    """An item and when to send it: ``slot`` (integer) and ``offset`` seconds from start."""

    slot: int
    offset: float
    chat_id: int
    item: T


class _FreeSlots:
    """The earliest free slot at or after a given one (union-find over taken slots)."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def take(self, wanted: int) -> int:
        path = []
        slot = wanted
        while slot in self._next:
            path.append(slot)
            slot = self._next[slot]
        for seen in path:  # path compression
            self._next[seen] = slot
        self._next[slot] = slot + 1
        return slot


def pace(
    items: Sequence[T], *, chat_of: Callable[[T], int], limits: Limits = TELEGRAM
) -> list[Paced[T]]:
    """When to send each item, in send order (by slot)."""
    free = _FreeSlots()
    next_for_chat: dict[int, int] = {}
    gap = limits.chat_gap_slots
    scheduled = []
    for item in items:
        chat = chat_of(item)
        slot = free.take(next_for_chat.get(chat, 0))
        next_for_chat[chat] = slot + gap
        scheduled.append(Paced(slot, slot / limits.per_second, chat, item))
    scheduled.sort(key=lambda p: p.slot)
    return scheduled


async def send_paced(
    items: Sequence[T],
    send: Callable[[T], Awaitable[bool]],
    *,
    chat_of: Callable[[T], int],
    limits: Limits = TELEGRAM,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> int:
    """Send the items on schedule, one at a time; the number ``send`` reported as sent.

    ``send`` returns False for a message that was not sent (e.g. the customer withdrew
    consent meanwhile, or blocked the bot); it should handle its own errors.
    """
    start = clock()
    sent = 0
    for paced in pace(items, chat_of=chat_of, limits=limits):
        wait = start + paced.offset - clock()
        if wait > 0:
            await sleep(wait)
        if await send(paced.item):
            sent += 1
    return sent
