"""The result types of the NLU: what ``analyze(text)`` returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OUT_OF_SCOPE = "out_of_scope"
SENTIMENTS = ("negative", "neutral", "positive")


@dataclass(frozen=True, slots=True)
class Entity:
    """A span found in the text, with a normalised value (ISO date, canonical order id...)."""

    label: str
    text: str
    start_char: int
    end_char: int
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Analysis:
    """Intent, sentiment and entities of one message.

    ``intent`` is ``out_of_scope`` when the classifier's confidence is below the pipeline's
    threshold (or the model's out-of-scope class wins); ``top_intent`` keeps the best
    in-scope guess either way. ``confidence`` is the calibrated probability of the best
    label. ``intent_ranking`` holds the three most likely in-scope intents with their
    calibrated probabilities, best first (the choices to offer when
    ``NLU.needs_clarification`` says to ask back). ``sentiment_score`` is in [-1, 1]:
    P(positive) - P(negative).
    """

    intent: str
    confidence: float
    sentiment: str
    sentiment_score: float
    entities: tuple[Entity, ...] = ()
    top_intent: str | None = None
    intent_ranking: tuple[tuple[str, float], ...] = field(default=(), repr=False)

    def entity(self, label: str) -> Entity | None:
        """The first entity with this label, or None."""
        return next((e for e in self.entities if e.label == label), None)

    def entities_as_dicts(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.entities]
