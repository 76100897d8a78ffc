"""Shared pieces of the Bot API markup parsers: output bookkeeping and error texts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .errors import bad_request

END = "\0"
SPACE = frozenset(" \t\r\n\v\f\0")


@dataclass
class FormattedText:
    """Plain text plus Bot API ``MessageEntity`` dicts (offsets in UTF-16 code units)."""

    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def fail(message: str) -> NoReturn:
    """Raise the Bot API's 400 for malformed markup."""
    raise bad_request(f"can't parse entities: {message}")


def byte_offset(text: str, index: int) -> int:
    """UTF-8 byte offset of character ``index``: error messages count bytes."""
    return len(text[:index].encode("utf-8", "surrogatepass"))


def link_entity(url: str, offset: int, length: int) -> dict[str, Any] | None:
    """Entity for a link target: ``tg://user?id=`` becomes a text mention."""
    url = url.strip()
    if not url:
        return None
    match = re.fullmatch(r"tg://user\?id=(\d+)", url)
    if match:
        user = {"id": int(match.group(1)), "is_bot": False, "first_name": ""}
        return {"type": "text_mention", "offset": offset, "length": length, "user": user}
    if "://" not in url and not url.startswith("tg:"):
        url = f"http://{url}"
    return {"type": "text_link", "offset": offset, "length": length, "url": url}


@dataclass
class OpenEntity:
    """An entity whose start was seen and whose end is still expected."""

    name: str
    offset: int
    out_index: int
    byte_offset: int = 0
    attrs: dict[str, str] = field(default_factory=dict)


class MarkupParser:
    """Shared output bookkeeping for the markup parsers."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.n = len(source)
        self.out: list[str] = []
        self.utf16 = 0
        self.entities: list[dict[str, Any]] = []

    def at(self, index: int) -> str:
        """Character at ``index``, or NUL past the end (as the C parser sees it)."""
        return self.src[index] if index < self.n else END

    def emit(self, chars: str) -> None:
        """Append output text, advancing the UTF-16 offset."""
        self.out.append(chars)
        self.utf16 += utf16_len(chars)

    def boff(self, index: int) -> int:
        """Byte offset of ``index`` in the source."""
        return byte_offset(self.src, index)

    def add(self, kind: str, offset: int, **extra: Any) -> dict[str, Any]:
        """Record an entity from ``offset`` to the current output position."""
        entity = {"type": kind, "offset": offset, "length": self.utf16 - offset, **extra}
        self.entities.append(entity)
        return entity

    def inner_text(self, out_index: int) -> str:
        """Output produced since ``out_index`` (a link's text, used as its URL if none)."""
        return "".join(self.out[out_index:])
