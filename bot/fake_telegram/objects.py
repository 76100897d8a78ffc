"""Builders for Bot API objects: users, chats, photos, media."""

from __future__ import annotations

import secrets
import time
from typing import Any

from .records import FileStore, StoredFile

DEFAULT_USER_ID = 111111
DEFAULT_SUPERGROUP_ID = -1001000000001
DEFAULT_GROUP_ID = -4000000001
DEFAULT_CHANNEL_ID = -1002000000001
_PHOTO_STEPS = (90, 320, 800)


def now() -> int:
    """Unix time as Telegram's ``date`` fields carry it."""
    return int(time.time())


def compact(data: dict[str, Any]) -> dict[str, Any]:
    """Drop None values, as the Bot API omits absent optional fields."""
    return {key: value for key, value in data.items() if value is not None}


def make_user(
    user_id: int,
    *,
    first_name: str,
    last_name: str | None = None,
    username: str | None = None,
    language_code: str | None = None,
) -> dict[str, Any]:
    """A human ``User``."""
    return compact(
        {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "last_name": last_name,
            "username": username,
            "language_code": language_code,
        }
    )


def private_chat(user: dict[str, Any]) -> dict[str, Any]:
    """The private ``Chat`` between the bot and ``user``."""
    return compact(
        {
            "id": user["id"],
            "type": "private",
            "first_name": user.get("first_name"),
            "last_name": user.get("last_name"),
            "username": user.get("username"),
        }
    )


def group_chat(
    chat_id: int, *, title: str, chat_type: str, username: str | None = None
) -> dict[str, Any]:
    """A group, supergroup or channel ``Chat``."""
    return compact({"id": chat_id, "type": chat_type, "title": title, "username": username})


def implicit_chat(chat_id: int, user: dict[str, Any] | None) -> dict[str, Any]:
    """A chat the bot writes to before the fake ever saw it (lenient mode)."""
    if chat_id > 0:
        return private_chat(user or make_user(chat_id, first_name=f"User{chat_id}"))
    chat_type = "supergroup" if str(chat_id).startswith("-100") else "group"
    return group_chat(chat_id, title=f"Chat {chat_id}", chat_type=chat_type)


def chat_instance(chat_id: int) -> str:
    """A stable ``chat_instance`` for callback queries from one chat."""
    return str((chat_id * 0x9E3779B97F4A7C15) % (1 << 63))


def callback_query_id() -> str:
    """A Telegram-looking callback query id."""
    return str(10**18 + secrets.randbelow(9 * 10**18))


def placeholder_content(kind: str, size: int | None) -> bytes:
    """Bytes served for a fake user's file when the test gave none."""
    head = f"fake {kind} content\n".encode()
    return (head * (1 + (size or 0) // len(head)))[: size or len(head)]


def file_fields(stored: StoredFile) -> dict[str, Any]:
    """The identifier and size fields every file object carries."""
    return compact(
        {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }
    )


def photo_sizes(
    files: FileStore, *, width: int, height: int, content: bytes | None
) -> list[dict[str, Any]]:
    """A ``PhotoSize`` list, smallest first, the largest one holding ``content``."""
    sizes: list[dict[str, Any]] = []
    biggest = max(width, height, 1)
    for step in (*_PHOTO_STEPS, biggest):
        if step > biggest or (sizes and step == sizes[-1]["_step"]):
            continue
        scale = step / biggest
        is_full = step == biggest
        file_size = (
            len(content) if is_full and content is not None else max(1000, step * step // 10)
        )
        stored = files.add(
            "photo", content=content if is_full else None, size=file_size, mime_type="image/jpeg"
        )
        sizes.append(
            {
                **file_fields(stored),
                "width": max(1, round(width * scale)),
                "height": max(1, round(height * scale)),
                "_step": step,
            }
        )
    for photo_size in sizes:
        del photo_size["_step"]
    return sizes


def sticker_object(
    stored: StoredFile,
    *,
    emoji: str | None,
    set_name: str | None,
    is_animated: bool,
    is_video: bool,
    width: int = 512,
    height: int = 512,
) -> dict[str, Any]:
    """A regular ``Sticker``."""
    return compact(
        {
            **file_fields(stored),
            "type": "regular",
            "width": width,
            "height": height,
            "is_animated": is_animated,
            "is_video": is_video,
            "emoji": emoji,
            "set_name": set_name,
        }
    )


def document_object(stored: StoredFile) -> dict[str, Any]:
    """A ``Document``."""
    return compact(
        {**file_fields(stored), "file_name": stored.filename, "mime_type": stored.mime_type}
    )


def voice_object(stored: StoredFile, *, duration: int) -> dict[str, Any]:
    """A ``Voice`` note."""
    return compact({**file_fields(stored), "duration": duration, "mime_type": stored.mime_type})
