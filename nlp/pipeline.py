"""The NLU facade: a trained spaCy pipeline turned into ``Analysis`` results."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc

import nlp.classifier
import nlp.entities  # noqa: F401 - registers the crm_entities factory
from nlp.analysis import OUT_OF_SCOPE, Analysis, Entity
from nlp.classifier import SklearnTextClassifier, scores
from nlp.entities import CRMEntityRecognizer, extract_entities
from nlp.text import MAX_ANALYSED_CHARS, has_words
from nlp.training import (
    DATA_DIR,
    DEFAULT_OOS_THRESHOLD,
    INTENT_PREFIX,
    SENTIMENT_PREFIX,
    data_fingerprint,
    load_training_data,
    train_pipeline,
)

log = logging.getLogger(__name__)


class NLU:
    """Analyses customer messages: intent (or out_of_scope), sentiment and entities."""

    def __init__(self, nlp: Language, *, oos_threshold: float | None = None) -> None:
        self.nlp = nlp
        meta = nlp.meta.get("crmbot", {})
        self.oos_threshold = (
            oos_threshold
            if oos_threshold is not None
            else float(meta.get("oos_threshold", DEFAULT_OOS_THRESHOLD))
        )

    @classmethod
    def load(cls, path: str | Path, **kwargs: float) -> NLU:
        return cls(spacy.load(path), **kwargs)

    def save(self, path: str | Path) -> None:
        self.nlp.to_disk(path)

    def analyze(self, text: str, *, today: date | None = None) -> Analysis:
        """Analyse one message. Never raises on odd text; empty text is out of scope."""
        return self.analyze_many([text], today=today)[0]

    def analyze_many(self, texts: Sequence[str], *, today: date | None = None) -> list[Analysis]:
        docs = self.nlp.pipe(self._make_doc(t, today) for t in texts)
        return [self._to_analysis(doc) for doc in docs]

    def _make_doc(self, text: str, today: date | None) -> Doc:
        # Only the start of a very long message is analysed: spaCy's tokenizer slows down
        # badly on long runs of punctuation, and intent lives in the first lines anyway.
        doc = self.nlp.make_doc(text[:MAX_ANALYSED_CHARS])
        if today is not None:
            doc.user_data["today"] = today
        return doc

    def _to_analysis(self, doc: Doc) -> Analysis:
        intents = sorted(scores(doc, INTENT_PREFIX).items(), key=lambda kv: -kv[1])
        sentiments = scores(doc, SENTIMENT_PREFIX)
        top, confidence = intents[0] if intents else (OUT_OF_SCOPE, 0.0)
        intent = top
        if not has_words(doc.text) or confidence < self.oos_threshold:
            intent = OUT_OF_SCOPE
        if has_words(doc.text):
            sentiment = max(sentiments, key=sentiments.__getitem__) if sentiments else "neutral"
            score = sentiments.get("positive", 0.0) - sentiments.get("negative", 0.0)
        else:
            sentiment, score = "neutral", 0.0
        return Analysis(
            intent=intent,
            confidence=round(float(confidence), 4),
            sentiment=sentiment,
            sentiment_score=round(max(-1.0, min(1.0, score)), 4),
            entities=tuple(Entity(**e) for e in extract_entities(doc)),
            top_intent=top,
            intent_ranking=tuple((k, round(v, 4)) for k, v in intents[:5]),
        )

    def set_products(self, names: Iterable[str]) -> None:
        """Teach the entity recogniser the shop's product names."""
        entities = self.nlp.get_pipe("crm_entities")
        assert isinstance(entities, CRMEntityRecognizer)
        entities.set_products(list(names))

    @property
    def intents(self) -> list[str]:
        classifier = self.nlp.get_pipe("intent")
        assert isinstance(classifier, SklearnTextClassifier)
        return sorted(classifier.labels)


def default_cache_dir() -> Path:
    """Where trained default models are kept: $XDG_CACHE_HOME/crmbot or ~/.cache/crmbot."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "crmbot" / "models"


_lock = threading.Lock()


def load_or_train(
    *,
    model_path: Path | None = None,
    cache_dir: Path | None = None,
    data_dir: Path = DATA_DIR,
) -> NLU:
    """Load ``model_path`` if given, else the cached default model, training it if needed.

    Training takes a few seconds and happens once per version of the training data. The
    model is written to a temporary folder and renamed, so concurrent workers never load a
    half-written model.
    """
    if model_path is not None:
        if not (Path(model_path) / "meta.json").is_file():
            raise FileNotFoundError(
                f"{model_path}: no trained pipeline here (run `crmbot nlu train --output "
                f"{model_path}` or unset CRMBOT_MODEL_PATH to use the default model)"
            )
        return NLU.load(model_path)
    target = (cache_dir or default_cache_dir()) / f"shop-{data_fingerprint(data_dir)}"
    with _lock:
        if (target / "meta.json").is_file():
            return NLU.load(target)
        log.info("training the default NLU model (first use; takes a few seconds)")
        nlu = NLU(train_pipeline(load_training_data(data_dir)))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".train-", dir=target.parent))
        try:
            nlu.save(tmp)
            try:
                tmp.rename(target)
            except OSError:  # another process finished first; use theirs
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return nlu
