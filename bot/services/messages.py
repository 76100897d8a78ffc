"""Neutral message types shared by every channel (Telegram, console, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from db.models import InteractionKind

TELEGRAM_MAX_CHARS = 4096


@dataclass(frozen=True, slots=True)
class Sender:
    """Who wrote a message, as the channel knows them."""

    user_id: int
    chat_id: int
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message from a person, with its text exactly as sent (caption for media)."""

    sender: Sender
    text: str
    channel: str = "telegram"
    kind: str = InteractionKind.TEXT
    attachment: dict[str, Any] | None = None
    update_id: int | None = None
    message_id: int | None = None
    sent_at: datetime | None = None
    # The text of the bot's own message this one replies to (staff answering a card).
    reply_to_text: str | None = None

    @property
    def command(self) -> tuple[str, str] | None:
        """``("stats", "rest of line")`` for ``/stats@crmbot rest of line``, else None."""
        if self.kind not in (InteractionKind.TEXT, InteractionKind.COMMAND):
            return None
        stripped = self.text.lstrip()
        if not stripped.startswith("/") or len(stripped) < 2:
            return None
        head, _, rest = stripped[1:].partition(" ")
        name = head.split("@", 1)[0].lower()
        if not name or not all(ch.isalnum() or ch == "_" for ch in name):
            return None
        return name, rest.strip()


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    data: str


@dataclass(frozen=True, slots=True)
class IncomingCallback:
    """A press on an inline button: its data and the message it was attached to."""

    sender: Sender
    data: str
    message_id: int | None = None
    channel: str = "telegram"
    update_id: int | None = None


@dataclass(slots=True)
class Reply:
    """A message to send. ``interaction_id`` is set once the reply was stored, ``outbox_id``
    once it is in the outbox (stored together with the answer); ``leased`` while the outbox
    row was just written by this process and nothing of it is sent yet (it is sent without
    being read back).

    With ``photo`` (PNG bytes), the picture is sent first with ``caption``, then the text.
    With ``edit_message_id``, the bot's earlier message is edited instead (button paging).
    With ``document`` (bytes) and ``filename``, the text is sent, then the file.
    """

    chat_id: int
    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    interaction_id: int | None = None
    photo: bytes | None = None
    caption: str | None = None
    edit_message_id: int | None = None
    document: bytes | None = None
    filename: str | None = None
    outbox_id: int | None = None
    leased: bool = False


def split_text(text: str, *, limit: int = TELEGRAM_MAX_CHARS) -> list[str]:
    """Split a long text into parts of at most ``limit`` characters, at line breaks or
    spaces where possible, never inside a word unless the word itself is too long."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = window.rfind("\n")
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    if rest:
        parts.append(rest)
    return [p for p in parts if p]
