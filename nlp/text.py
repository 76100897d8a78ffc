"""Text normalisation for analysis. Stored text is never changed; only what the models see."""

from __future__ import annotations

import re
import unicodedata

MAX_ANALYSED_CHARS = 2000
_INVISIBLE = dict.fromkeys(
    [
        0x200B,
        0x200C,
        0x200D,
        0x200E,
        0x200F,
        0x2060,
        0xFEFF,
        0x202A,
        0x202B,
        0x202C,
        0x202D,
        0x202E,
        0x2066,
        0x2067,
        0x2068,
        0x2069,
        0x00AD,
    ]
)
_SPACE = re.compile(r"\s+")


def normalize(text: str, *, max_chars: int = MAX_ANALYSED_CHARS) -> str:
    """NFKC-fold, drop invisible and control characters, collapse whitespace, truncate."""
    text = unicodedata.normalize("NFKC", text[: max_chars * 2])
    text = text.translate(_INVISIBLE)
    text = "".join(
        ch if ch.isspace() or unicodedata.category(ch)[0] != "C" else " " for ch in text
    )
    return _SPACE.sub(" ", text).strip()[:max_chars]


def word_set(text: str) -> frozenset[str]:
    """The space-separated words of ``text`` (for word lists written as one string)."""
    return frozenset(text.split())


def has_words(text: str) -> bool:
    """True if the text contains at least one letter or digit."""
    return any(ch.isalnum() for ch in text)


_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@\w+")
_ELONGATION = re.compile(r"(\w)\1{2,}")
_PUNCT_RUN = re.compile(r"([!?.])\1{2,}")
_DIGIT = re.compile(r"\d")
# Emoji and emoticons carry tone; the classifiers see them as words. Our own small map.
_EMOJI_WORDS = {
    "😀": "smile", "😃": "smile", "😄": "smile", "😁": "smile", "😊": "smile", "🙂": "smile",
    "😉": "smile", "😍": "love", "🥰": "love", "😘": "love", "❤": "love", "♥": "love",
    "💕": "love", "👍": "good", "👌": "good", "👏": "bravo", "🙌": "bravo", "🎉": "yay",
    "🙏": "thanks", "😂": "haha", "🤣": "haha", "😅": "haha", "🤔": "hmm", "😐": "meh",
    "😕": "meh", "🙁": "sad", "😞": "sad", "😢": "sad", "😭": "crying", "😔": "sad",
    "😡": "angry", "😠": "angry", "🤬": "angry", "😤": "angry", "👎": "bad", "💩": "bad",
    "🙄": "eyeroll", "😒": "eyeroll", "😩": "ugh", "😫": "ugh", "🤦": "facepalm",
    "😱": "shocked", "😳": "shocked",
}  # fmt: skip
_EMOTICONS = re.compile(r"(?<!\w)(?:[:;=]-?[)D\]]|[:;=]-?[(\[/]|<3)(?!\w)")
_EMOTICON_WORDS = {")": "smile", "D": "smile", "]": "smile", "(": "sad", "[": "sad", "/": "meh"}


def _emoticon(match: re.Match[str]) -> str:
    token = match.group(0)
    return " love " if token == "<3" else f" {_EMOTICON_WORDS[token[-1]]} "


def model_text(text: str) -> str:
    """What the classifiers see: normalised, lower case, noise reduced.

    URLs become ``url``, @mentions are dropped, letters repeated three times or more are
    squeezed to two ("soooo" -> "soo"), emoji and emoticons become words ("😡" -> "angry"),
    runs of ``!``/``?`` are squeezed and every digit becomes ``0`` (order numbers and amounts
    are entities; their exact digits say nothing about the intent).
    """
    text = normalize(text)
    text = _URL.sub(" url ", text)
    text = _MENTION.sub(" ", text)
    text = _EMOTICONS.sub(_emoticon, text)
    text = "".join(f" {_EMOJI_WORDS[ch]} " if ch in _EMOJI_WORDS else ch for ch in text)
    text = _ELONGATION.sub(r"\1\1", text.lower())
    text = _PUNCT_RUN.sub(r"\1\1", text)
    text = _DIGIT.sub("0", text)
    return _SPACE.sub(" ", text).strip()
