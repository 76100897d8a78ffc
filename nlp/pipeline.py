"""The NLU facade: a trained spaCy pipeline turned into ``Analysis`` results."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Doc

import nlp.classifier
import nlp.embeddings
import nlp.entities  # noqa: F401 - registers the crm_entities factory
from nlp.analysis import OUT_OF_SCOPE, Analysis, Entity
from nlp.classifier import SklearnTextClassifier, scores
from nlp.entities import CRMEntityRecognizer, extract_entities
from nlp.text import MAX_ANALYSED_CHARS, has_words, model_text
from nlp.training import (
    BLANK_TOKENIZER,
    CLARIFY_BAND,
    DATA_DIR,
    DEFAULT_OOS_THRESHOLD,
    INTENT_PREFIX,
    SENTIMENT_PREFIX,
    Progress,
    data_fingerprint,
    load_training_data,
    train_pipeline,
)

RANKING_SIZE = 3

log = logging.getLogger(__name__)


class NLU:
    """Analyses customer messages: intent (or out_of_scope), sentiment and entities.

    Confidence bands (calibrated probabilities of the best intent):

    * below :attr:`oos_threshold` the intent is ``out_of_scope``;
    * from :attr:`oos_threshold` up to below :attr:`confident_threshold` the intent is the
      best guess but uncertain: :meth:`needs_clarification` is True, and the bot should ask
      back with the intents of ``Analysis.intent_ranking`` as choices;
    * from :attr:`confident_threshold` on the bot can act on the intent.
    """

    def __init__(
        self,
        nlp: Language,
        *,
        oos_threshold: float | None = None,
        confident_threshold: float | None = None,
    ) -> None:
        self.nlp = nlp
        meta = nlp.meta.get("crmbot", {})
        self.oos_threshold = (
            oos_threshold
            if oos_threshold is not None
            else float(meta.get("oos_threshold", DEFAULT_OOS_THRESHOLD))
        )
        if confident_threshold is None:
            default = min(0.95, self.oos_threshold + CLARIFY_BAND)
            confident_threshold = float(meta.get("confident_threshold", default))
            if oos_threshold is not None:  # an explicit OOS threshold moves the band along
                confident_threshold = default
        self.confident_threshold = max(self.oos_threshold, confident_threshold)

    @classmethod
    def load(cls, path: str | Path, **kwargs: float) -> NLU:
        """Load a saved pipeline (``nlu.save`` / ``crmbot nlu train``) and warm it up.

        Our pipelines keep spaCy's English tokenizer as ``spacy.blank("en")`` made it
        (meta ``crmbot.tokenizer``); spaCy builds that one from the config anyway, so it is
        not read a second time from disk (that takes 0.2 s).
        """
        meta = srsly.read_json(Path(path) / "meta.json")
        default_tokenizer = meta.get("crmbot", {}).get("tokenizer") == BLANK_TOKENIZER
        nlu = cls(spacy.load(path, exclude=["tokenizer"] if default_tokenizer else []), **kwargs)
        nlu.analyze("hello")  # loads lazy parts (the embedding model) now, not on a message
        return nlu

    @property
    def engine(self) -> str:
        """``light`` or ``embeddings``."""
        return str(self.nlp.meta.get("crmbot", {}).get("engine", "light"))

    @property
    def embeddings(self) -> str | None:
        """The sentence-transformers model of the embeddings engine, else None."""
        value = self.nlp.meta.get("crmbot", {}).get("embeddings")
        return str(value) if value else None

    def needs_clarification(self, analysis: Analysis) -> bool:
        """True when the intent is in scope but not confident: ask the customer to choose.

        That is ``oos_threshold <= confidence < confident_threshold``; out-of-scope and
        confident analyses return False.
        """
        return analysis.intent != OUT_OF_SCOPE and analysis.confidence < self.confident_threshold

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
        in_scope = [(k, v) for k, v in intents if k != OUT_OF_SCOPE]
        intent = top
        # Words, digits, or emoji and emoticons the models read as words ("👍" -> "good").
        readable = has_words(model_text(doc.text))
        if not readable or confidence < self.oos_threshold:
            intent = OUT_OF_SCOPE
        if readable:
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
            top_intent=in_scope[0][0] if in_scope else top,
            intent_ranking=tuple((k, round(v, 4)) for k, v in in_scope[:RANKING_SIZE]),
        )

    def set_products(self, names: Iterable[str]) -> None:
        """Teach the entity recogniser the shop's product names."""
        entities = self.nlp.get_pipe("crm_entities")
        assert isinstance(entities, CRMEntityRecognizer)
        entities.set_products(list(names))

    @property
    def intents(self) -> list[str]:
        """The intent labels the model knows (with ``out_of_scope`` if it was trained on it)."""
        classifier = self.nlp.get_pipe("intent")
        assert isinstance(classifier, SklearnTextClassifier)
        return sorted(classifier.labels)

    @property
    def sentiments(self) -> list[str]:
        classifier = self.nlp.get_pipe("sentiment")
        assert isinstance(classifier, SklearnTextClassifier)
        return sorted(classifier.labels)


def default_cache_dir() -> Path:
    """Where trained default models are kept: $XDG_CACHE_HOME/crmbot or ~/.cache/crmbot."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "crmbot" / "models"


_lock = threading.Lock()


def default_model_dir(
    *, cache_dir: Path | None = None, data_dir: Path = DATA_DIR, embeddings: str | None = None
) -> Path:
    """Where the default model for this data and engine is (or will be) cached."""
    fingerprint = data_fingerprint(data_dir, embeddings=embeddings)
    return (cache_dir or default_cache_dir()) / f"shop-{fingerprint}"


def load_or_train(
    *,
    model_path: Path | None = None,
    cache_dir: Path | None = None,
    data_dir: Path = DATA_DIR,
    embeddings: str | None = None,
    progress: Progress | None = None,
) -> NLU:
    """Load ``model_path`` if given, else the cached default model, training it if needed.

    ``embeddings`` (a sentence-transformers model name or folder, e.g. the value of
    ``CRMBOT_NLU_EMBEDDINGS``) selects the embeddings engine for the default model; None is
    the light engine. A ``model_path`` brings its own engine. Training takes seconds and
    happens once per version of the training data and engine; ``progress`` (default: the
    log) gets a line per step. The model is written to a temporary folder and renamed, so
    concurrent workers never load a half-written model.
    """
    if model_path is not None:
        if not (Path(model_path) / "meta.json").is_file():
            raise FileNotFoundError(
                f"{model_path}: no trained pipeline here (run `crmbot nlu train --out "
                f"{model_path}` or unset CRMBOT_MODEL_PATH to use the default model)"
            )
        return NLU.load(model_path)
    target = default_model_dir(cache_dir=cache_dir, data_dir=data_dir, embeddings=embeddings)
    with _lock:
        if (target / "meta.json").is_file():
            try:
                return NLU.load(target)
            except Exception as exc:  # a cache written by another version: train anew
                log.warning("cannot load the cached model %s (%s); retraining", target, exc)
                stale = target.with_name(f".stale-{target.name}-{os.getpid()}")
                with contextlib.suppress(OSError):
                    target.rename(stale)
                    shutil.rmtree(stale, ignore_errors=True)
        log.info("training the default NLU model (first use; takes a few seconds)")
        nlu = NLU(
            train_pipeline(load_training_data(data_dir), embeddings=embeddings, progress=progress)
        )
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
