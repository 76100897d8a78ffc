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


def has_words(text: str) -> bool:
    """True if the text contains at least one letter or digit."""
    return any(ch.isalnum() for ch in text)
