"""Message text formatting as the Bot API server does it.

``format_text`` turns ``text`` + ``parse_mode`` (HTML, MarkdownV2, Markdown) or explicit
``entities`` into the plain text and entity list that Telegram returns, and rejects malformed
markup with the same ``Bad Request: can't parse entities: ...`` texts as the real server, so a
bot that forgets to escape customer input fails here as it would in production. It also trims
surrounding whitespace and adds the automatic entities (bot commands, URLs, e-mails, mentions,
hashtags) that Telegram detects by itself.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import bad_request
from .markup_base import FormattedText, utf16_len
from .markup_html import HtmlParser
from .markup_markdown import MarkdownV2Parser, parse_markdown_legacy

_VERBATIM = frozenset({"code", "pre", "text_link", "text_mention", "custom_emoji"})
_AUTO_PATTERNS = (
    ("bot_command", re.compile(r"(?<![\w/<>])/\w{1,64}(?:@\w{3,32})?(?![\w/<>])", re.ASCII)),
    ("url", re.compile(r"(?<![\w@/.])(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)),
    (
        "email",
        re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?!\w)"),
    ),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{2,32}(?![\w@])")),
    ("hashtag", re.compile(r"(?<![\w#])#\w{1,256}(?![\w#])")),
)


def format_text(
    text: str,
    *,
    parse_mode: str | None = None,
    entities: list[dict[str, Any]] | None = None,
    auto_entities: bool = True,
) -> FormattedText:
    """Parse ``text`` like the Bot API; raise ``ApiError`` 400 on malformed markup."""
    mode = (parse_mode or "").strip().lower()
    if entities:
        parsed = FormattedText(text, [dict(entity) for entity in entities])
    elif not mode:
        parsed = FormattedText(text)
    elif mode == "html":
        parsed = HtmlParser(text).parse()
    elif mode == "markdownv2":
        parsed = MarkdownV2Parser(text).parse()
    elif mode == "markdown":
        parsed = parse_markdown_legacy(text)
    else:
        raise bad_request("unsupported parse_mode")
    parsed = _trim(parsed)
    if auto_entities:
        parsed.entities.extend(_auto_entities(parsed.text, parsed.entities))
    parsed.entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return parsed


def _trim(parsed: FormattedText) -> FormattedText:
    """Strip surrounding whitespace as Telegram does, moving entities along."""
    text = parsed.text
    stripped = text.strip()
    if stripped == text:
        return parsed
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    new_length = utf16_len(stripped)
    entities = []
    for entity in parsed.entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, new_length)
        if end > start:
            entities.append({**entity, "offset": start, "length": end - start})
    return FormattedText(stripped, entities)


def _auto_entities(text: str, existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities Telegram detects by itself, skipping code, links and each other."""
    if not text:
        return []
    prefix = [0]
    for char in text:
        prefix.append(prefix[-1] + (2 if ord(char) > 0xFFFF else 1))
    taken = [
        (entity["offset"], entity["offset"] + entity["length"])
        for entity in existing
        if entity["type"] in _VERBATIM
    ]
    found: list[dict[str, Any]] = []
    for kind, pattern in _AUTO_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if kind == "url":
                end -= len(match.group()) - len(match.group().rstrip(".,;:!?)"))
            if kind == "hashtag" and not re.search(r"[^\W\d_]", match.group()):
                continue
            span = (prefix[start], prefix[end])
            if any(
                span[0] < other_end and other_start < span[1] for other_start, other_end in taken
            ):
                continue
            taken.append(span)
            found.append({"type": kind, "offset": span[0], "length": span[1] - span[0]})
    return found


__all__ = ["FormattedText", "format_text", "utf16_len"]
