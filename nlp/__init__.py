"""Natural-language understanding for crmbot: text in, :class:`Analysis` out.

Pure: this package never imports Telegram, the bot or the database.

    >>> from nlp import analyze
    >>> analyze("where is my order #10234?").intent
    'track_order'
"""

from __future__ import annotations

from datetime import date

from nlp.analysis import OUT_OF_SCOPE, SENTIMENTS, Analysis, Entity
from nlp.pipeline import NLU, load_or_train

_default: NLU | None = None


def set_default_nlu(nlu: NLU | None) -> None:
    """Use ``nlu`` for :func:`analyze` (the app calls this once it loaded its model)."""
    global _default
    _default = nlu


def default_nlu() -> NLU:
    """The NLU behind :func:`analyze`: the cached default model, trained on first use."""
    global _default
    if _default is None:
        _default = load_or_train()
    return _default


def analyze(text: str, *, today: date | None = None) -> Analysis:
    """Intent (or ``out_of_scope``), confidence, sentiment, sentiment score and entities."""
    return default_nlu().analyze(text, today=today)


__all__ = [
    "NLU",
    "OUT_OF_SCOPE",
    "SENTIMENTS",
    "Analysis",
    "Entity",
    "analyze",
    "default_nlu",
    "load_or_train",
    "set_default_nlu",
]
