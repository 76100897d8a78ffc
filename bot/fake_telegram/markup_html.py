"""The Bot API's HTML parse mode (errors worded as the Bot API server words them)."""

from __future__ import annotations

from typing import Any

from .markup_base import (
    SPACE,
    FormattedText,
    MarkupParser,
    OpenEntity,
    fail,
    link_entity,
)

_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_TAGS = frozenset(
    [
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "tg-time",
        "span",
        "pre",
        "code",
        "blockquote",
    ]
)
_HTML_SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}


def _decode_html_entity(src: str, pos: int) -> tuple[str | None, int]:
    """Decode ``&...;`` at ``pos``; return (character or None if not an entity, end position)."""
    end = pos + 1
    if src[end : end + 1] == "#":
        end += 1
        base, digits = 10, "0123456789"
        if src[end : end + 1] == "x":
            end += 1
            base, digits = 16, "0123456789abcdefABCDEF"
        start = end
        while end < len(src) and src[end] in digits:
            end += 1
        if end == start or end - pos >= 10:
            return None, pos
        code = int(src[start:end], base)
        if code == 0 or code >= 0x10FFFF:
            return None, pos
        if 0xD800 <= code <= 0xDFFF:
            fail(
                "Text contains invalid Unicode characters after decoding HTML entities, "
                "check for unmatched surrogate code units"
            )
        char: str | None = chr(code)
    else:
        start = end
        while end < len(src) and src[end].isascii() and src[end].isalpha():
            end += 1
        char = _HTML_NAMED.get(src[start:end])
        if char is None:
            return None, pos
    if src[end : end + 1] == ";":
        end += 1
    return char, end


class HtmlParser(MarkupParser):
    """The Bot API's HTML dialect: a fixed tag set, strict nesting, four named entities."""

    def parse(self) -> FormattedText:
        self.stack: list[OpenEntity] = []
        i = 0
        while i < self.n:
            char = self.src[i]
            if char == "&":
                decoded, end = _decode_html_entity(self.src, i)
                if decoded is not None:
                    self.emit(decoded)
                    i = end
                    continue
            if char != "<":
                self.emit(char)
                i += 1
            elif self.at(i + 1) == "/":
                i = self._end_tag(i)
            else:
                i = self._start_tag(i)
        if self.stack:
            fail(f"Can't find end tag corresponding to start tag {self.stack[-1].name}")
        for entity in self.entities:
            entity.pop("_language", None)
        return FormattedText("".join(self.out), self.entities)

    def _skip_spaces(self, j: int) -> int:
        while j < self.n and self.src[j] in SPACE:
            j += 1
        return j

    def _start_tag(self, begin: int) -> int:
        j = begin + 1
        while self.at(j) not in SPACE and self.at(j) != ">":
            j += 1
        if j >= self.n:
            fail(f"Unclosed start tag at byte offset {self.boff(begin)}")
        name = self.src[begin + 1 : j].lower()
        if name not in _HTML_TAGS:
            fail(f'Unsupported start tag "{name}" at byte offset {self.boff(begin)}')
        attrs, j = self._attributes(name, begin, j)
        if name == "span" and attrs.get("class") != "tg-spoiler":
            fail(f'Tag "span" must have class "tg-spoiler" at byte offset {self.boff(begin)}')
        self.stack.append(OpenEntity(name, self.utf16, len(self.out), attrs=attrs))
        return j + 1

    def _attributes(self, tag: str, begin: int, j: int) -> tuple[dict[str, str], int]:
        attrs: dict[str, str] = {}
        while self.at(j) != ">":
            j = self._skip_spaces(j)
            if self.at(j) == ">":
                break
            name_start = j
            while self.at(j) not in SPACE and self.at(j) not in "=>":
                j += 1
            name = self.src[name_start:j]
            if not name:
                fail(f'Empty attribute name in the tag "{tag}" at byte offset {self.boff(begin)}')
            j = self._skip_spaces(j)
            if self.at(j) != "=":
                if tag == "blockquote" and name.lower() == "expandable":
                    attrs["expandable"] = ""
                    continue
                fail(
                    "Expected equal sign in declaration of an attribute of the tag "
                    f'"{tag}" at byte offset {self.boff(begin)}'
                )
            j = self._skip_spaces(j + 1)
            if j >= self.n:
                fail(f'Unclosed start tag "{tag}" at byte offset {self.boff(begin)}')
            attrs[name], j = self._attribute_value(j)
            if j >= self.n:
                fail(f"Unclosed start tag at byte offset {self.boff(begin)}")
        return attrs, j

    def _attribute_value(self, j: int) -> tuple[str, int]:
        quote = self.at(j)
        if quote not in "'\"":
            start = j
            while self.at(j).isascii() and (self.at(j).isalnum() or self.at(j) in ".-"):
                j += 1
            if self.at(j) not in SPACE and self.at(j) != ">":
                fail(f"Unexpected end of name token at byte offset {self.boff(start)}")
            return self.src[start:j].lower(), j
        j += 1
        chars: list[str] = []
        while j < self.n and self.src[j] != quote:
            if self.src[j] == "&":
                decoded, end = _decode_html_entity(self.src, j)
                if decoded is not None:
                    chars.append(decoded)
                    j = end
                    continue
            chars.append(self.src[j])
            j += 1
        return "".join(chars), j + 1 if j < self.n else j

    def _end_tag(self, begin: int) -> int:
        if not self.stack:
            fail(f"Unexpected end tag at byte offset {self.boff(begin)}")
        j = begin + 2
        while self.at(j) not in SPACE and self.at(j) != ">":
            j += 1
        end_name = self.src[begin + 2 : j].lower()
        j = self._skip_spaces(j)
        if self.at(j) != ">":
            fail(f"Unclosed end tag at byte offset {self.boff(begin)}")
        top = self.stack[-1]
        if end_name and end_name != top.name:
            fail(
                f'Unmatched end tag at byte offset {self.boff(begin)}, expected "</{top.name}>", '
                f'found "</{end_name}>"'
            )
        self.stack.pop()
        if self.utf16 > top.offset:
            self._close(top)
        return j + 1

    def _close(self, top: OpenEntity) -> None:
        name, attrs, offset = top.name, top.attrs, top.offset
        if name in _HTML_SIMPLE:
            self.add(_HTML_SIMPLE[name], offset)
        elif name == "a":
            url = attrs.get("href") or self.inner_text(top.out_index)
            entity = link_entity(url, offset, self.utf16 - offset)
            if entity:
                self.entities.append(entity)
        elif name == "tg-emoji":
            emoji_id = attrs.get("emoji-id", "")
            if not emoji_id.isdigit() or int(emoji_id) == 0:
                fail("Invalid custom emoji identifier specified")
            self.add("custom_emoji", offset, custom_emoji_id=emoji_id)
        elif name == "tg-time":
            self._close_time(attrs, offset)
        elif name == "blockquote":
            self.add("expandable_blockquote" if "expandable" in attrs else "blockquote", offset)
        else:
            self._close_code(name, attrs, offset)

    def _close_time(self, attrs: dict[str, str], offset: int) -> None:
        unix = attrs.get("unix", "")
        if not unix.isdigit():
            fail("Invalid Unix time specified")
        extra: dict[str, Any] = {"unix_time": int(unix)}
        if attrs.get("format"):
            extra["date_time_format"] = attrs["format"]
        self.add("date_time", offset, **extra)

    def _close_code(self, name: str, attrs: dict[str, str], offset: int) -> None:
        last = self.entities[-1] if self.entities else None
        same = last is not None and (last["offset"], last["length"]) == (
            offset,
            self.utf16 - offset,
        )
        if name == "pre":
            if same and last and last["type"] == "code" and last.get("_language"):
                last.update(type="pre", language=last.pop("_language"))
            else:
                self.add("pre", offset)
            return
        css = attrs.get("class", "")
        language = css[len("language-") :] if css.startswith("language-") else ""
        if same and last and last["type"] == "pre" and language:
            last["language"] = language
        else:
            self.add("code", offset, _language=language)
