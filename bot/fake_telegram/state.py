"""In-memory state of the fake Bot API, shared by the server thread and test threads.

Every access goes through ``FakeState.cond`` (a ``threading.Condition`` over an ``RLock``).
``changed()`` wakes threads blocked in ``wait_*`` helpers and calls the registered listeners,
which the server uses to wake coroutines in its event loop (long polls, webhook delivery).
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .records import CallRecord, Fault, FileStore
from .update_queue import QueuedUpdate, UpdateQueue

DEFAULT_BOT_ID = 123456789
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendSticker"})


@dataclass
class Webhook:
    """The active webhook configuration and its delivery health."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None

    def info(self, pending: int, allowed: list[str] | None) -> dict[str, Any]:
        """The ``WebhookInfo`` object."""
        data: dict[str, Any] = {
            "url": self.url,
            "has_custom_certificate": False,
            "pending_update_count": pending,
            "max_connections": self.max_connections,
            "ip_address": self.ip_address or "127.0.0.1",
        }
        if allowed is not None:
            data["allowed_updates"] = allowed
        if self.last_error_date is not None:
            data["last_error_date"] = self.last_error_date
            data["last_error_message"] = self.last_error_message
        return data


def update_chat(update: dict[str, Any]) -> int | None:
    """The chat an update belongs to, for per-chat webhook delivery (None: no chat)."""
    for key, value in update.items():
        if not isinstance(value, dict) or key == "update_id":
            continue
        message = value.get("message") if key == "callback_query" else value
        chat = message.get("chat") if isinstance(message, dict) else None
        if isinstance(chat, dict) and "id" in chat:
            return int(chat["id"])
        user = value.get("from") or value.get("user")
        if isinstance(user, dict) and "id" in user:
            return int(user["id"])
    return None


class FakeState:
    """All data of one fake Telegram bot."""

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_username: str = "crmbot_test_bot",
        bot_first_name: str = "CRM Test Bot",
        strict_chats: bool = False,
    ) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.token = token
        self.bot_id = int(token.split(":", 1)[0]) if token else DEFAULT_BOT_ID
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.strict_chats = strict_chats
        self.closing = False
        self.queue = UpdateQueue()
        self.files = FileStore()
        self._listeners: list[Callable[[], None]] = []
        self._clear()

    def _clear(self) -> None:
        self.queue.clear()
        self.files.clear()
        self.webhook: Webhook | None = None
        self.poll_generation = 0
        self.users: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[int, dict[str, Any]]] = {}
        self.last_message_id: dict[int, int] = {}
        self.bot_sent: set[tuple[int, int]] = set()
        self.reply_keyboards: dict[int, dict[str, Any]] = {}
        self.callback_queries: dict[str, dict[str, Any]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.settings: dict[tuple[str, str], Any] = {}
        self.calls: list[CallRecord] = []
        self.sent: list[dict[str, Any]] = []
        self.sent_per_chat: dict[int, int] = {}
        self.requests: list[str] = []
        self.faults: dict[str, deque[Fault]] = {}
        self.blocked: set[int] = set()
        self.injected: dict[int, dict[str, Any]] = {}

    def reset(self) -> None:
        """Forget everything except the update_id counter (so a running bot's offset holds)."""
        with self.cond:
            self._clear()
            self.changed()

    # -- change notification -------------------------------------------------------------

    def add_listener(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from any thread) after each change; returns an unsubscriber."""
        with self.cond:
            self._listeners.append(callback)

        def remove() -> None:
            with self.cond:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return remove

    def changed(self) -> None:
        """Wake waiting threads and notify listeners."""
        with self.cond:
            self.cond.notify_all()
            listeners = list(self._listeners)
        for callback in listeners:
            callback()

    # -- bot identity --------------------------------------------------------------------

    def use_token(self, token: str) -> None:
        """Remember the bot id from the token of an accepted request."""
        with self.cond:
            self.bot_id = int(token.split(":", 1)[0])

    def bot_user(self) -> dict[str, Any]:
        """The bot as the ``from`` of its messages."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    # -- updates -------------------------------------------------------------------------

    def enqueue(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update (assigning update_id when missing) and return a copy of it."""
        with self.cond:
            queued, _ = self.queue.push(update)
            self.injected[queued["update_id"]] = copy.deepcopy(queued)
            self.changed()
            return queued

    def begin_poll(self) -> int:
        """Register a new getUpdates call; older ones still waiting get a 409."""
        with self.cond:
            self.poll_generation += 1
            self.changed()
            return self.poll_generation

    def pending_updates(self) -> list[dict[str, Any]]:
        """Copies of the updates not yet confirmed (or delivered by webhook)."""
        with self.cond:
            return self.queue.snapshot()

    def next_webhook_job(self) -> tuple[Webhook, QueuedUpdate] | None:
        """The webhook and the oldest pending update to deliver to it, if any."""
        jobs = self.next_webhook_jobs(busy=set(), limit=1)
        return jobs[0] if jobs else None

    def next_webhook_jobs(
        self, *, busy: set[int | None], limit: int
    ) -> list[tuple[Webhook, QueuedUpdate]]:
        """Up to ``limit`` deliveries that may start now, oldest first: each chat's oldest
        pending update, for chats not in ``busy`` (a chat's next update waits until the
        previous one was taken with a 2xx, as Telegram's delivery queues per chat do)."""
        with self.cond:
            if self.webhook is None or self.closing or limit < 1:
                return []
            jobs: list[tuple[Webhook, QueuedUpdate]] = []
            seen: set[int | None] = set()
            for item in self.queue.items:
                chat = update_chat(item.update)
                if chat in seen:
                    continue
                seen.add(chat)
                if chat not in busy:
                    jobs.append((self.webhook, item))
                    if len(jobs) == limit:
                        break
            return jobs

    def finish_webhook_job(self, item: QueuedUpdate, error: str | None) -> None:
        """Record a webhook delivery: drop the update on success, remember the error else."""
        with self.cond:
            if error is None:
                self.queue.remove(item)
            elif self.webhook is not None:
                self.webhook.last_error_date = int(time.time())
                self.webhook.last_error_message = error
            self.changed()

    # -- chats, users and messages -------------------------------------------------------

    def remember_user(self, user: dict[str, Any]) -> None:
        """Store (or refresh) a user's public profile."""
        with self.cond:
            self.users[int(user["id"])] = copy.deepcopy(user)

    def remember_chat(self, chat: dict[str, Any]) -> None:
        """Store (or refresh) a chat's public fields."""
        with self.cond:
            self.chats[int(chat["id"])] = copy.deepcopy(chat)

    def find_chat(self, chat_id: int | str) -> dict[str, Any] | None:
        """A known chat by id or ``@username``."""
        with self.cond:
            if isinstance(chat_id, int):
                return self.chats.get(chat_id)
            wanted = chat_id.lstrip("@").lower()
            return next(
                (
                    chat
                    for chat in self.chats.values()
                    if chat.get("username", "").lower() == wanted
                ),
                None,
            )

    def new_message_id(self, chat_id: int) -> int:
        """Next message id in a chat (ids increase per chat)."""
        with self.cond:
            self.last_message_id[chat_id] = self.last_message_id.get(chat_id, 0) + 1
            return self.last_message_id[chat_id]

    def store_message(self, message: dict[str, Any]) -> None:
        """Store the current version of a message in its chat's history."""
        with self.cond:
            chat_id = int(message["chat"]["id"])
            self.messages.setdefault(chat_id, {})[int(message["message_id"])] = copy.deepcopy(
                message
            )

    def get_message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """A copy of a stored message, or None."""
        with self.cond:
            message = self.messages.get(chat_id, {}).get(message_id)
            return copy.deepcopy(message) if message else None

    def delete_message(self, chat_id: int, message_id: int) -> bool:
        """Remove a message from history; False if it did not exist."""
        with self.cond:
            return self.messages.get(chat_id, {}).pop(message_id, None) is not None

    def chat_history(self, chat_id: int) -> list[dict[str, Any]]:
        """Current versions of all messages in a chat, oldest first."""
        with self.cond:
            history = self.messages.get(chat_id, {})
            return [copy.deepcopy(history[key]) for key in sorted(history)]

    # -- records and faults --------------------------------------------------------------

    def record_request(self, method: str) -> None:
        """Remember that a request for ``method`` arrived."""
        with self.cond:
            self.requests.append(method)
            self.changed()

    def record_call(self, record: CallRecord) -> None:
        """Remember the outcome of a Bot API call (and index successfully sent messages)."""
        with self.cond:
            self.calls.append(record)
            if record.ok and record.method in SEND_METHODS:
                chat_id = int(record.result["chat"]["id"])
                self.sent.append(record.result)
                self.sent_per_chat[chat_id] = self.sent_per_chat.get(chat_id, 0) + 1
            self.changed()

    def count_sent(self, chat_id: int | None = None) -> int:
        """How many messages the bot sent (to one chat), without copying them."""
        with self.cond:
            return len(self.sent) if chat_id is None else self.sent_per_chat.get(chat_id, 0)

    def sent_messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent successfully (as returned to it), oldest first."""
        with self.cond:
            return [
                copy.deepcopy(message)
                for message in self.sent
                if chat_id is None or message["chat"]["id"] == chat_id
            ]

    def add_fault(self, method: str, fault: Fault) -> None:
        """Queue a fault for the next calls of ``method`` (case-insensitive)."""
        with self.cond:
            self.faults.setdefault(method.lower(), deque()).append(fault)

    def pop_fault(self, method: str) -> Fault | None:
        """Consume one use of the first queued fault for ``method``."""
        with self.cond:
            queue = self.faults.get(method.lower())
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.popleft()
            return copy.copy(fault)

    def clear_faults(self, method: str | None = None) -> None:
        """Drop queued faults for one method or all."""
        with self.cond:
            if method is None:
                self.faults.clear()
            else:
                self.faults.pop(method.lower(), None)
