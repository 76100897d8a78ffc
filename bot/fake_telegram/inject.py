"""Building and queueing the updates a test "user" causes: messages, clicks, media, edits."""

from __future__ import annotations

import copy
from typing import Any, TypedDict, Unpack

from .formatting import format_text
from .objects import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_GROUP_ID,
    DEFAULT_SUPERGROUP_ID,
    DEFAULT_USER_ID,
    callback_query_id,
    chat_instance,
    compact,
    document_object,
    group_chat,
    make_user,
    now,
    photo_sizes,
    placeholder_content,
    private_chat,
    sticker_object,
    voice_object,
)
from .state import FakeState

_USER_FIELDS = ("last_name", "username", "language_code")


class Sender(TypedDict, total=False):
    """Who sends an injected message and where (all optional)."""

    user_id: int
    first_name: str
    last_name: str | None
    username: str | None
    language_code: str | None
    chat_id: int
    chat_type: str
    chat_title: str
    message_thread_id: int
    reply_to_message_id: int


class Injector:
    """Creates updates as Telegram would deliver them and queues them on a ``FakeState``."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    # -- text --------------------------------------------------------------------------------

    def message(self, text: str, **sender: Unpack[Sender]) -> dict[str, Any]:
        """A text message (bot commands in it get ``bot_command`` entities)."""
        formatted = format_text(text)
        if not formatted.text:
            raise ValueError("message text is empty")
        fields = compact({"text": formatted.text, "entities": formatted.entities or None})
        return self._compose(fields, sender)

    def command(self, command: str, args: str = "", **sender: Unpack[Sender]) -> dict[str, Any]:
        """A command such as ``/start`` or ``/stats foo``."""
        text = command if command.startswith("/") else f"/{command}"
        return self.message(f"{text} {args}".strip(), **sender)

    def group_message(self, text: str, **sender: Unpack[Sender]) -> dict[str, Any]:
        """A message in a group (``chat_type`` "group" or the default "supergroup")."""
        sender.setdefault("chat_type", "supergroup")
        return self.message(text, **sender)

    def channel_post(
        self,
        text: str,
        *,
        chat_id: int = DEFAULT_CHANNEL_ID,
        chat_title: str = "Test Channel",
        chat_username: str | None = None,
    ) -> dict[str, Any]:
        """A ``channel_post`` (no ``from``; ``sender_chat`` is the channel)."""
        formatted = format_text(text)
        chat = group_chat(chat_id, title=chat_title, chat_type="channel", username=chat_username)
        with self.state.cond:
            self.state.remember_chat(chat)
            message = {
                "message_id": self.state.new_message_id(chat_id),
                "sender_chat": chat,
                "chat": chat,
                "date": now(),
                **compact({"text": formatted.text, "entities": formatted.entities or None}),
            }
            self.state.store_message(message)
            return self.state.enqueue({"channel_post": message})

    def edited_message(
        self, message_id: int, text: str, *, chat_id: int | None = None, user_id: int | None = None
    ) -> dict[str, Any]:
        """An edit of an earlier user message (``edited_message`` / ``edited_channel_post``)."""
        chat_key = chat_id if chat_id is not None else (user_id or DEFAULT_USER_ID)
        with self.state.cond:
            original = self.state.get_message(chat_key, message_id)
            if original is None:
                raise ValueError(f"no message {message_id} in chat {chat_key}")
            if (chat_key, message_id) in self.state.bot_sent:
                raise ValueError("the bot's own messages are edited with editMessageText")
            field = "text" if "text" in original else "caption"
            formatted = format_text(text)
            original[field] = formatted.text
            entities_key = "entities" if field == "text" else "caption_entities"
            original.pop(entities_key, None)
            if formatted.entities:
                original[entities_key] = formatted.entities
            original["edit_date"] = now()
            self.state.store_message(original)
            is_channel = original["chat"]["type"] == "channel"
            key = "edited_channel_post" if is_channel else "edited_message"
            return self.state.enqueue({key: original})

    # -- buttons -----------------------------------------------------------------------------

    def callback_query(
        self, data: str, *, message_id: int | None = None, **sender: Unpack[Sender]
    ) -> dict[str, Any]:
        """A press on an inline button of a bot message (default: its latest with a keyboard)."""
        with self.state.cond:
            user = self._user(sender)
            chat_id = sender.get("chat_id", user["id"])
            message = self._bot_message(chat_id, message_id)
            query_id = callback_query_id()
            self.state.callback_queries[query_id] = {"answered": False, "answer": None}
            query = {
                "id": query_id,
                "from": user,
                "message": message,
                "chat_instance": chat_instance(chat_id),
                "data": data,
            }
            return self.state.enqueue({"callback_query": query})

    def click_button(
        self, text: str, *, message_id: int | None = None, **sender: Unpack[Sender]
    ) -> dict[str, Any]:
        """Press the inline button labelled ``text``, or type it if it is a reply-keyboard key."""
        with self.state.cond:
            chat_id = sender.get("chat_id", sender.get("user_id", DEFAULT_USER_ID))
            found = self._find_button(chat_id, text, message_id)
            if found is not None:
                found_id, button = found
                if "callback_data" not in button:
                    raise ValueError(f"button {text!r} has no callback_data")
                return self.callback_query(button["callback_data"], message_id=found_id, **sender)
            keyboard = self.state.reply_keyboards.get(chat_id, {}).get("keyboard", [])
            labels = [b if isinstance(b, str) else b.get("text") for row in keyboard for b in row]
            if text in labels:
                return self.message(text, **sender)
        raise LookupError(f"no button {text!r} in chat {chat_id}")

    # -- media -------------------------------------------------------------------------------

    def sticker(
        self,
        *,
        emoji: str = "👍",
        set_name: str | None = None,
        is_animated: bool = False,
        is_video: bool = False,
        **sender: Unpack[Sender],
    ) -> dict[str, Any]:
        """A regular sticker."""
        with self.state.cond:
            stored = self.state.files.add("sticker", size=24_000, mime_type="image/webp")
            stored.content = placeholder_content("sticker", stored.size)
            sticker = sticker_object(
                stored, emoji=emoji, set_name=set_name, is_animated=is_animated, is_video=is_video
            )
            stored.meta["object"] = sticker
            return self._compose({"sticker": sticker}, sender)

    def photo(
        self,
        *,
        caption: str | None = None,
        width: int = 1280,
        height: int = 960,
        content: bytes | None = None,
        **sender: Unpack[Sender],
    ) -> dict[str, Any]:
        """A photo (a list of ``PhotoSize``), optionally with a caption."""
        with self.state.cond:
            sizes = photo_sizes(self.state.files, width=width, height=height, content=content)
            largest = self.state.files.get(sizes[-1]["file_id"])
            if largest is not None and largest.content is None:
                largest.content = placeholder_content("photo", largest.size)
            for size in sizes:
                stored = self.state.files.get(size["file_id"])
                if stored is not None:
                    stored.meta["sizes"] = sizes
            return self._compose({"photo": sizes, **_caption(caption)}, sender)

    def voice(
        self,
        *,
        duration: int = 3,
        mime_type: str = "audio/ogg",
        content: bytes | None = None,
        caption: str | None = None,
        **sender: Unpack[Sender],
    ) -> dict[str, Any]:
        """A voice note."""
        with self.state.cond:
            data = content if content is not None else placeholder_content("voice", 4000)
            stored = self.state.files.add("voice", content=data, mime_type=mime_type)
            voice = voice_object(stored, duration=duration)
            stored.meta["object"] = voice
            return self._compose({"voice": voice, **_caption(caption)}, sender)

    def document(
        self,
        *,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        content: bytes | None = None,
        caption: str | None = None,
        **sender: Unpack[Sender],
    ) -> dict[str, Any]:
        """A document (any file), optionally with a caption."""
        with self.state.cond:
            data = content if content is not None else placeholder_content("document", 2000)
            stored = self.state.files.add(
                "document", content=data, filename=file_name, mime_type=mime_type
            )
            document = document_object(stored)
            stored.meta["object"] = document
            return self._compose({"document": document, **_caption(caption)}, sender)

    def location(
        self, latitude: float, longitude: float, **sender: Unpack[Sender]
    ) -> dict[str, Any]:
        """A shared location."""
        return self._compose({"location": {"latitude": latitude, "longitude": longitude}}, sender)

    def contact(
        self,
        phone_number: str,
        contact_first_name: str = "Contact",
        *,
        contact_last_name: str | None = None,
        contact_user_id: int | None = None,
        vcard: str | None = None,
        **sender: Unpack[Sender],
    ) -> dict[str, Any]:
        """A shared contact."""
        contact = compact(
            {
                "phone_number": phone_number,
                "first_name": contact_first_name,
                "last_name": contact_last_name,
                "user_id": contact_user_id,
                "vcard": vcard,
            }
        )
        return self._compose({"contact": contact}, sender)

    # -- raw ---------------------------------------------------------------------------------

    def raw(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue ``update`` verbatim; an old ``update_id`` is delivered again (dedup tests)."""
        update = copy.deepcopy(update)
        with self.state.cond:
            for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
                message = update.get(key)
                if isinstance(message, dict) and isinstance(message.get("chat"), dict):
                    self.state.remember_chat(message["chat"])
                    if "message_id" in message:
                        self.state.store_message(message)
            return self.state.enqueue(update)

    def redeliver(self, update_id: int) -> dict[str, Any]:
        """Queue an earlier update again, unchanged (same ``update_id``)."""
        with self.state.cond:
            update = self.state.injected.get(update_id)
        if update is None:
            raise ValueError(f"no update {update_id} was injected")
        return self.raw(update)

    # -- helpers -----------------------------------------------------------------------------

    def _user(self, sender: Sender) -> dict[str, Any]:
        user_id = sender.get("user_id", DEFAULT_USER_ID)
        known = self.state.users.get(user_id, {})
        default_first = "Alice" if user_id == DEFAULT_USER_ID else f"User{user_id}"
        first_name = sender.get("first_name") or known.get("first_name") or default_first
        given: dict[str, Any] = dict(sender)
        values: dict[str, str | None] = {
            key: given.get(key, known.get(key)) for key in _USER_FIELDS
        }
        if not known:
            values["language_code"] = sender.get("language_code", "en")
            if user_id == DEFAULT_USER_ID:
                values["username"] = sender.get("username", "alice")
        user = make_user(
            user_id,
            first_name=first_name,
            last_name=values["last_name"],
            username=values["username"],
            language_code=values["language_code"],
        )
        self.state.remember_user(user)
        return user

    def _chat(self, sender: Sender, user: dict[str, Any]) -> dict[str, Any]:
        chat_type = sender.get("chat_type", "private")
        if chat_type == "private":
            if sender.get("chat_id", user["id"]) != user["id"]:
                raise ValueError("a private chat's id is the user's id")
            chat = private_chat(user)
        elif chat_type in ("group", "supergroup"):
            default_id = DEFAULT_GROUP_ID if chat_type == "group" else DEFAULT_SUPERGROUP_ID
            chat_id = sender.get("chat_id", default_id)
            if chat_id >= 0:
                raise ValueError("group chat ids are negative")
            known = self.state.chats.get(chat_id, {})
            title = sender.get("chat_title") or known.get("title") or "Test Group"
            chat = group_chat(chat_id, title=title, chat_type=chat_type)
        else:
            raise ValueError(f"unsupported chat_type {chat_type!r} (use channel_post)")
        self.state.remember_chat(chat)
        return chat

    def _compose(self, fields: dict[str, Any], sender: Sender) -> dict[str, Any]:
        """Wrap message ``fields`` into a message from ``sender``, store it and queue it."""
        with self.state.cond:
            user = self._user(sender)
            chat = self._chat(sender, user)
            message: dict[str, Any] = {
                "message_id": self.state.new_message_id(chat["id"]),
                "from": user,
                "chat": chat,
                "date": now(),
            }
            if "message_thread_id" in sender:
                message["message_thread_id"] = sender["message_thread_id"]
            if "reply_to_message_id" in sender:
                message["reply_to_message"] = self._reply_target(
                    chat["id"], sender["reply_to_message_id"]
                )
            message.update(fields)
            self.state.store_message(message)
            return self.state.enqueue({"message": message})

    def _reply_target(self, chat_id: int, message_id: int) -> dict[str, Any]:
        target = self.state.get_message(chat_id, message_id)
        if target is None:
            raise ValueError(f"no message {message_id} in chat {chat_id} to reply to")
        target.pop("reply_to_message", None)
        return target

    def _bot_message(self, chat_id: int, message_id: int | None) -> dict[str, Any]:
        """A bot message to click on: the given one, else the latest with an inline keyboard."""
        if message_id is not None:
            message = self.state.get_message(chat_id, message_id)
            if message is None or (chat_id, message_id) not in self.state.bot_sent:
                raise ValueError(f"the bot sent no message {message_id} in chat {chat_id}")
            return message
        history = self.state.chat_history(chat_id)
        mine = [m for m in history if (chat_id, m["message_id"]) in self.state.bot_sent]
        keyed = [m for m in mine if "reply_markup" in m]
        if not (keyed or mine):
            raise ValueError(f"the bot sent no message in chat {chat_id}")
        return (keyed or mine)[-1]

    def _find_button(
        self, chat_id: int, text: str, message_id: int | None
    ) -> tuple[int, dict[str, Any]] | None:
        history = self.state.chat_history(chat_id)
        for message in reversed(history):
            if message_id is not None and message["message_id"] != message_id:
                continue
            if (chat_id, message["message_id"]) not in self.state.bot_sent:
                continue
            rows = message.get("reply_markup", {}).get("inline_keyboard", [])
            for button in (button for row in rows for button in row):
                if button.get("text") == text:
                    return message["message_id"], button
        return None


def _caption(caption: str | None) -> dict[str, Any]:
    if not caption:
        return {}
    formatted = format_text(caption)
    return compact({"caption": formatted.text, "caption_entities": formatted.entities or None})
