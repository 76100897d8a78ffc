"""The Bot API's MarkdownV2 and legacy Markdown parse modes."""

from __future__ import annotations

import re
from typing import Any, NoReturn

from .errors import bad_request
from .markup_base import (
    SPACE,
    FormattedText,
    MarkupParser,
    OpenEntity,
    fail,
    link_entity,
)

_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!\n")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
    "blockquote": "BlockQuote",
}
_MDV2_CLOSERS = {"bold": "*", "strikethrough": "~", "code": "`", "text_link": "]"}


class MarkdownV2Parser(MarkupParser):
    """MarkdownV2: every reserved character outside an entity must be escaped."""

    def parse(self) -> FormattedText:
        self.stack: list[OpenEntity] = []
        self.quote = False
        i = 0
        while i < self.n:
            i = self._step(i)
        if self.quote and self.stack and self.stack[-1].name == "blockquote":
            top = self.stack.pop()
            if self.utf16 > top.offset:
                self.add("blockquote", top.offset)
        if self.stack:
            top = self.stack[-1]
            fail(
                f"Can't find end of {_MDV2_NAMES[top.name]} entity at byte offset "
                f"{top.byte_offset}"
            )
        return FormattedText("".join(self.out), self.entities)

    def _step(self, i: int) -> int:
        char, following = self.src[i], self.at(i + 1)
        if char == "\\" and "\0" < following <= "~":
            self.emit(following)
            return i + 2
        top = self.stack[-1] if self.stack else None
        reserved = "`" if top and top.name in ("code", "pre") else _MDV2_RESERVED
        if char not in reserved:
            self.emit(char)
            return i + 1
        if top and self._is_end(top.name, char, i):
            return self._close(top, char, i)
        return self._open(char, i)

    def _is_end(self, name: str, char: str, i: int) -> bool:
        if self.quote and char == "\n" and self.at(i + 1) != ">":
            return True
        following = self.at(i + 1)
        if name in _MDV2_CLOSERS:
            return char == _MDV2_CLOSERS[name]
        if name == "italic":
            return char == "_" and following != "_"
        if name == "underline":
            return char == "_" and following == "_"
        if name == "spoiler":
            return char == "|" and following == "|"
        if name == "pre":
            return char == "`" and following == "`" and self.at(i + 2) == "`"
        return name == "custom_emoji" and char == "]"

    def _reserved(self, char: str) -> NoReturn:
        fail(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")

    def _open(self, char: str, i: int) -> int:
        start, following = i, self.at(i + 1)
        if char == "\n":
            return self._newline(i)
        if char == "`" and following == "`" and self.at(i + 2) == "`":
            return self._open_pre(i)
        doubles = {"_": "underline", "|": "spoiler"}
        singles = {"_": "italic", "*": "bold", "~": "strikethrough", "[": "text_link"}
        if char in doubles and following == char:
            name, i = doubles[char], i + 1
        elif char in singles:
            name = singles[char]
        elif char == "`":
            name = "code"
        elif char == "!" and following == "[":
            name, i = "custom_emoji", i + 1
        elif char == ">" and i == 0:
            name, self.quote = "blockquote", True
        else:
            self._reserved(char)
        self.stack.append(OpenEntity(name, self.utf16, len(self.out), self.boff(start)))
        return i + 1

    def _newline(self, i: int) -> int:
        self.emit("\n")
        if self.at(i + 1) == ">":
            i += 1
            if not self.quote:
                self.quote = True
                self.stack.append(
                    OpenEntity("blockquote", self.utf16, len(self.out), self.boff(i))
                )
        return i + 1

    def _open_pre(self, i: int) -> int:
        start = i
        i += 3
        end = i
        while self.at(end) not in SPACE and self.at(end) != "`":
            end += 1
        language = ""
        if end != i and end < self.n and self.at(end) != "`":
            language, i = self.src[i:end], end
        if self.at(i) in "\r\n" and i < self.n:
            pair = self.at(i + 1) in "\r\n" and self.at(i + 1) != self.at(i)
            i += 2 if pair else 1
        opened = OpenEntity("pre", self.utf16, len(self.out), self.boff(start))
        opened.attrs["language"] = language
        self.stack.append(opened)
        return i

    def _close(self, top: OpenEntity, char: str, i: int) -> int:
        if char == "\n" and top.name != "blockquote":
            fail(
                f"Can't find end of {_MDV2_NAMES[top.name]} entity at byte offset "
                f"{top.byte_offset}"
            )
        self.stack.pop()
        skip = self.utf16 == top.offset
        extra: dict[str, Any] = {}
        if top.name in ("underline", "spoiler"):
            i += 1
        elif top.name == "pre":
            i += 2
            if top.attrs.get("language"):
                extra["language"] = top.attrs["language"]
        elif top.name in ("text_link", "custom_emoji"):
            return self._close_link(top, i, skip)
        elif top.name == "blockquote":
            self.quote = False
            self.emit("\n")
        if not skip:
            self.add(top.name, top.offset, **extra)
        return i + 1

    def _read_url(self, i: int, what: str = "a URL") -> tuple[str, int]:
        i += 2
        start, chars = i, []
        while i < self.n and self.src[i] != ")":
            if self.src[i] == "\\" and "\0" < self.at(i + 1) <= "~":
                chars.append(self.src[i + 1])
                i += 2
                continue
            chars.append(self.src[i])
            i += 1
        if self.at(i) != ")":
            fail(f"Can't find end of {what} at byte offset {self.boff(start)}")
        return "".join(chars), i

    def _close_link(self, top: OpenEntity, i: int, skip: bool) -> int:
        length = self.utf16 - top.offset
        if top.name == "custom_emoji":
            if self.at(i + 1) != "(":
                raise bad_request("Custom emoji entity must contain a tg://emoji URL")
            url, i = self._read_url(i, "a custom emoji URL")
            match = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
            if not match:
                raise bad_request("Invalid custom emoji URL specified")
            if not skip:
                self.add("custom_emoji", top.offset, custom_emoji_id=match.group(1))
            return i + 1
        if self.at(i + 1) == "(":
            url, i = self._read_url(i)
        else:
            url = self.inner_text(top.out_index)
        entity = link_entity(url, top.offset, length)
        if entity and not skip:
            self.entities.append(entity)
        return i + 1


def parse_markdown_legacy(source: str) -> FormattedText:
    """Legacy Markdown: ``*bold*``, ``_italic_``, ``[text](url)``, `` `code` ``, no nesting."""
    parser = MarkupParser(source)
    i = 0
    while i < parser.n:
        char = source[i]
        if char == "\\" and parser.at(i + 1) in "_*`[":
            parser.emit(source[i + 1])
            i += 2
        elif char not in "_*`[":
            parser.emit(char)
            i += 1
        else:
            i = _legacy_entity(parser, i)
    return FormattedText("".join(parser.out), parser.entities)


def _legacy_entity(parser: MarkupParser, begin: int) -> int:
    src, char = parser.src, parser.src[begin]
    end_char = "]" if char == "[" else char
    i, language = begin + 1, ""
    is_pre = char == "`" and parser.at(i) == "`" and parser.at(i + 1) == "`"
    if is_pre:
        i += 2
        end = i
        while parser.at(end) not in SPACE and parser.at(end) != "`":
            end += 1
        if end != i and end < parser.n and parser.at(end) != "`":
            language, i = src[i:end], end
        if i < parser.n and parser.at(i) in "\r\n":
            i += 2 if parser.at(i + 1) in "\r\n" and parser.at(i + 1) != parser.at(i) else 1
    offset, out_index = parser.utf16, len(parser.out)

    def at_end(j: int) -> bool:
        if src[j] != end_char:
            return False
        return not is_pre or (parser.at(j + 1) == "`" and parser.at(j + 2) == "`")

    while i < parser.n and not at_end(i):
        parser.emit(src[i])
        i += 1
    if i >= parser.n:
        fail(f"Can't find end of the entity starting at byte offset {parser.boff(begin)}")
    if parser.utf16 != offset:
        if char == "[":
            url = parser.inner_text(out_index)
            if parser.at(i + 1) == "(":
                close = src.find(")", i + 2)
                close = parser.n if close < 0 else close
                url, i = src[i + 2 : close], close
            entity = link_entity(url, offset, parser.utf16 - offset)
            if entity:
                parser.entities.append(entity)
        elif char == "`":
            extra = {"language": language} if is_pre and language else {}
            parser.add("pre" if is_pre else "code", offset, **extra)
        else:
            parser.add("bold" if char == "*" else "italic", offset)
    return i + (3 if is_pre else 1)
