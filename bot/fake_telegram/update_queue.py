"""The pending-update queue with the Bot API's confirmation (offset) semantics.

Not thread-safe by itself: ``FakeState`` guards it with its lock.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

ALL_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
# What Telegram delivers when allowed_updates was never set, or set to an empty list.
DEFAULT_UPDATE_TYPES = ALL_UPDATE_TYPES - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}


def update_type(update: dict[str, Any]) -> str | None:
    """The kind of an update: its one field besides ``update_id``."""
    return next((key for key in update if key != "update_id"), None)


@dataclass
class QueuedUpdate:
    """One pending update. ``forced`` re-deliveries survive one stale confirmation."""

    update: dict[str, Any]
    forced: bool = False
    delivered: bool = False

    @property
    def update_id(self) -> int:
        """The update's id."""
        return int(self.update["update_id"])


class UpdateQueue:
    """Pending updates, the ``update_id`` counter and the ``allowed_updates`` filter."""

    def __init__(self) -> None:
        self.items: list[QueuedUpdate] = []
        self.next_update_id = 1
        self.allowed: frozenset[str] = DEFAULT_UPDATE_TYPES
        self.allowed_list: list[str] | None = None
        self.dropped: list[dict[str, Any]] = []

    def clear(self) -> None:
        """Forget pending updates and filters; the id counter keeps increasing."""
        self.items.clear()
        self.dropped.clear()
        self.allowed = DEFAULT_UPDATE_TYPES
        self.allowed_list = None

    def set_allowed(self, allowed: list[str] | None) -> None:
        """Apply ``allowed_updates`` (None keeps the previous setting, [] means default)."""
        if allowed is None:
            return
        self.allowed_list = list(allowed)
        self.allowed = frozenset(allowed) & ALL_UPDATE_TYPES or DEFAULT_UPDATE_TYPES

    def new_id(self) -> int:
        """Allocate the next ``update_id``."""
        update_id = self.next_update_id
        self.next_update_id += 1
        return update_id

    def push(self, update: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Queue a copy of ``update``, ``update_id`` first (assigned if missing).

        Returns the queued update and whether it passed the ``allowed_updates`` filter.
        """
        if "update_id" in update:
            update_id = int(update["update_id"])
            # An id handed out before means a re-delivery of an old update.
            forced = update_id < self.next_update_id
        else:
            update_id, forced = self.new_id(), False
        body = {key: value for key, value in update.items() if key != "update_id"}
        queued = copy.deepcopy({"update_id": update_id, **body})
        self.next_update_id = max(self.next_update_id, update_id + 1)
        if update_type(queued) not in self.allowed:
            self.dropped.append(queued)
            return copy.deepcopy(queued), False
        self.items.append(QueuedUpdate(queued, forced=forced))
        self.items.sort(key=lambda item: item.update_id)
        return copy.deepcopy(queued), True

    def confirm(self, offset: int | None) -> None:
        """Forget updates as ``getUpdates(offset=...)`` does; negative keeps the last -offset."""
        if not offset:
            return
        if offset < 0:
            del self.items[: max(len(self.items) + offset, 0)]
            return
        self.items = [
            item
            for item in self.items
            if item.update_id >= offset or (item.forced and not item.delivered)
        ]

    def take(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` pending updates (copies), marked as delivered."""
        batch = self.items[:limit]
        for item in batch:
            item.delivered = True
        return [copy.deepcopy(item.update) for item in batch]

    def remove(self, item: QueuedUpdate) -> None:
        """Drop one item (after a successful webhook delivery)."""
        self.items = [other for other in self.items if other is not item]

    def snapshot(self) -> list[dict[str, Any]]:
        """Copies of all pending updates."""
        return [copy.deepcopy(item.update) for item in self.items]
