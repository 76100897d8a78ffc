"""The Python control API of the fake server: inject updates, inspect calls, inject faults.

All methods are thread-safe and non-blocking except ``wait_for``/``wait_for_call``, which block
the calling thread; from async code use ``wait_for_async``/``wait_for_call_async`` so the event
loop (and a bot running on it) keeps going while waiting.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar, Unpack

from .inject import Injector, Sender
from .methods_bot import get_webhook_info
from .params import Params
from .records import CallRecord, Fault
from .state import FakeState

T = TypeVar("T")
MessagesCondition = int | Callable[[list[dict[str, Any]]], bool]


class FakeTelegram:
    """Control API over a ``FakeState``; ``FakeTelegramServer`` adds the HTTP server."""

    def __init__(self, state: FakeState) -> None:
        self.state = state
        self._injector = Injector(state)

    # -- injecting updates -------------------------------------------------------------------

    def inject_message(self, text: str, **sender: Unpack[Sender]) -> dict[str, Any]:
        """Queue a text message from a user (private chat unless ``chat_type`` says otherwise).

        ``sender`` keys: user_id, first_name, last_name, username, language_code, chat_id,
        chat_type ("private", "group", "supergroup"), chat_title, message_thread_id,
        reply_to_message_id. Returns the Update dict.
        """
        return self._injector.message(text, **sender)

    def inject_command(
        self, command: str, args: str = "", **sender: Unpack[Sender]
    ) -> dict[str, Any]:
        """Queue a command such as ``/start`` (with a ``bot_command`` entity at offset 0)."""
        return self._injector.command(command, args, **sender)

    def inject_group_message(self, text: str, **sender: Unpack[Sender]) -> dict[str, Any]:
        """Queue a message in a group; ``chat_type`` defaults to "supergroup"."""
        return self._injector.group_message(text, **sender)

    def inject_channel_post(
        self,
        text: str,
        *,
        chat_id: int | None = None,
        chat_title: str = "Test Channel",
        chat_username: str | None = None,
    ) -> dict[str, Any]:
        """Queue a ``channel_post``."""
        kwargs: dict[str, Any] = {"chat_title": chat_title, "chat_username": chat_username}
        if chat_id is not None:
            kwargs["chat_id"] = chat_id
        return self._injector.channel_post(text, **kwargs)

    def inject_edited_message(
        self, message_id: int, text: str, *, chat_id: int | None = None, user_id: int | None = None
    ) -> dict[str, Any]:
        """Queue an ``edited_message`` for an earlier user message (default: default user)."""
        return self._injector.edited_message(message_id, text, chat_id=chat_id, user_id=user_id)

    def inject_callback_query(
        self, data: str, *, message_id: int | None = None, **sender: Unpack[Sender]
    ) -> dict[str, Any]:
        """Queue a button press with ``data`` on a bot message (default: latest with keyboard)."""
        return self._injector.callback_query(data, message_id=message_id, **sender)

    def click_button(
        self, text: str, *, message_id: int | None = None, **sender: Unpack[Sender]
    ) -> dict[str, Any]:
        """Press the inline button labelled ``text`` (or type a reply-keyboard key)."""
        return self._injector.click_button(text, message_id=message_id, **sender)

    def inject_sticker(
        self, *, emoji: str = "👍", set_name: str | None = None, **sender: Unpack[Sender]
    ) -> dict[str, Any]:
        """Queue a sticker message."""
        return self._injector.sticker(emoji=emoji, set_name=set_name, **sender)

    def inject_photo(
        self,
        *,
        caption: str | None = None,
        width: int = 1280,
        height: int = 960,
        content: bytes | None = None,
        **sender: Unpack[Sender],
    ) -> dict[str, Any]:
        """Queue a photo (optionally with a caption and the bytes getFile should serve)."""
        return self._injector.photo(
            caption=caption, width=width, height=height, content=content, **sender
        )

    def inject_voice(
        self,
        *,
        duration: int = 3,
        content: bytes | None = None,
        caption: str | None = None,
        **sender: Unpack[Sender],
    ) -> dict[str, Any]:
        """Queue a voice note."""
        return self._injector.voice(duration=duration, content=content, caption=caption, **sender)

    def inject_document(
        self,
        *,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        content: bytes | None = None,
        caption: str | None = None,
        **sender: Unpack[Sender],
    ) -> dict[str, Any]:
        """Queue a document, optionally with a caption (a message with a caption and no text)."""
        return self._injector.document(
            file_name=file_name, mime_type=mime_type, content=content, caption=caption, **sender
        )

    def inject_location(
        self, latitude: float, longitude: float, **sender: Unpack[Sender]
    ) -> dict[str, Any]:
        """Queue a location message."""
        return self._injector.location(latitude, longitude, **sender)

    def inject_contact(
        self,
        phone_number: str,
        contact_first_name: str = "Contact",
        *,
        contact_last_name: str | None = None,
        contact_user_id: int | None = None,
        **sender: Unpack[Sender],
    ) -> dict[str, Any]:
        """Queue a shared contact (``sender`` is who shares it, as everywhere)."""
        return self._injector.contact(
            phone_number,
            contact_first_name,
            contact_last_name=contact_last_name,
            contact_user_id=contact_user_id,
            **sender,
        )

    def inject_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update verbatim; an already used ``update_id`` is delivered again."""
        return self._injector.raw(update)

    def redeliver(self, update_id: int) -> dict[str, Any]:
        """Deliver an earlier update again, unchanged (for deduplication tests)."""
        return self._injector.redeliver(update_id)

    # -- reading state -----------------------------------------------------------------------

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by getUpdates or delivered to the webhook."""
        return self.state.pending_updates()

    def dropped_updates(self) -> list[dict[str, Any]]:
        """Updates filtered out by the bot's ``allowed_updates``."""
        with self.state.cond:
            return copy.deepcopy(self.state.queue.dropped)

    def calls(self, method: str | None = None) -> list[CallRecord]:
        """Recorded Bot API calls (all outcomes), optionally of one method."""
        with self.state.cond:
            return [c for c in self.state.calls if method is None or c.method == method]

    def requests(self) -> list[str]:
        """Names of all Bot API methods requested, in arrival order."""
        with self.state.cond:
            return list(self.state.requests)

    def was_called(self, method: str) -> bool:
        """Whether the bot requested ``method`` at least once."""
        return method in self.requests()

    def sent_messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent successfully (as returned to it), optionally to one chat."""
        return self.state.sent_messages(chat_id)

    def chat_history(self, chat_id: int) -> list[dict[str, Any]]:
        """Current messages of a chat (users' and bot's, edits applied, deletions removed)."""
        return self.state.chat_history(chat_id)

    def callback_answer(self, query_id: str) -> dict[str, Any] | None:
        """How the bot answered a callback query (None if not answered)."""
        with self.state.cond:
            query = self.state.callback_queries.get(query_id)
            return copy.deepcopy(query["answer"]) if query else None

    def commands(
        self, *, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, str]]:
        """Commands stored by setMyCommands for a scope (default scope) and language."""
        key = (json.dumps(scope or {"type": "default"}, sort_keys=True), language_code)
        with self.state.cond:
            return copy.deepcopy(self.state.commands.get(key, []))

    def webhook_info(self) -> dict[str, Any]:
        """What getWebhookInfo would answer."""
        with self.state.cond:
            return get_webhook_info(self.state, Params({}))

    # -- waiting -----------------------------------------------------------------------------

    def wait_for(
        self, condition: MessagesCondition, *, chat_id: int | None = None, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Block until the bot has sent ``condition`` messages (an int) or ``condition(messages)``
        holds; return the sent messages (to ``chat_id`` if given). Raises ``TimeoutError``."""

        def probe() -> tuple[bool, list[dict[str, Any]]]:
            if isinstance(condition, int):
                if self.state.count_sent(chat_id) < condition:
                    return False, []
                return True, self.state.sent_messages(chat_id)
            messages = self.state.sent_messages(chat_id)
            return bool(condition(messages)), messages

        where = f" to chat {chat_id}" if chat_id is not None else ""
        return self._wait_until(probe, timeout, f"bot messages{where} matching {condition!r}")

    async def wait_for_async(
        self, condition: MessagesCondition, *, chat_id: int | None = None, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """``wait_for`` without blocking the running event loop."""
        return await asyncio.to_thread(self.wait_for, condition, chat_id=chat_id, timeout=timeout)

    def wait_for_call(
        self, method: str, *, count: int = 1, timeout: float = 5.0
    ) -> list[CallRecord]:
        """Block until ``method`` was called ``count`` times; return those call records."""

        def probe() -> tuple[bool, list[CallRecord]]:
            records = self.calls(method)
            return len(records) >= count, records

        return self._wait_until(probe, timeout, f"{count} call(s) of {method}")

    async def wait_for_call_async(
        self, method: str, *, count: int = 1, timeout: float = 5.0
    ) -> list[CallRecord]:
        """``wait_for_call`` without blocking the running event loop."""
        return await asyncio.to_thread(self.wait_for_call, method, count=count, timeout=timeout)

    def _wait_until(self, probe: Callable[[], tuple[bool, T]], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        with self.state.cond:
            while True:
                done, value = probe()
                if done:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = self.state.sent[-10:]
                    sent = [m.get("text", m.get("caption")) for m in recent]
                    raise TimeoutError(
                        f"timed out after {timeout}s waiting for {what}; sent: {sent}"
                    )
                self.state.cond.wait(remaining)

    # -- faults and misc ---------------------------------------------------------------------

    def inject_fault(
        self,
        method: str,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
        times: int = 1,
        description: str | None = None,
        body: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``status`` and/or be delayed.

        429 answers carry ``parameters.retry_after``; 502/504 answer nginx's HTML page; ``body``
        replaces the response body verbatim. With only ``delay`` the call then succeeds.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        fault = Fault(status, retry_after, delay, description, body, times)
        self.state.add_fault(method, fault)

    def clear_faults(self, method: str | None = None) -> None:
        """Drop pending faults (of one method, or all)."""
        self.state.clear_faults(method)

    def set_blocked(self, chat_id: int, blocked: bool = True) -> None:
        """Make sends to ``chat_id`` fail with 403 as if the user blocked the bot."""
        with self.state.cond:
            if blocked:
                self.state.blocked.add(chat_id)
            else:
                self.state.blocked.discard(chat_id)

    def reset(self) -> None:
        """Clear all state except the update_id counter."""
        self.state.reset()
