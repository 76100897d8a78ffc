"""The ``crm_classifier`` spaCy component: a calibrated linear model on n-grams (+ embeddings).

spaCy's bag-of-words ``textcat`` trains slowly on CPU and generalises worse on short, noisy
customer messages than TF-IDF over word and character n-grams with a linear model. This
component wraps :class:`~nlp.models.LinearScorer` so it stays one step of one spaCy
``Language``: it writes calibrated class probabilities to ``doc.cats`` under
``<prefix><label>`` and is saved and loaded with ``nlp.to_disk`` / ``spacy.load``.

With ``embeddings_weight > 0`` it also uses the sentence embedding that the
``crm_embedder`` component (see :mod:`nlp.embeddings`) put on the doc: that is the
``embeddings`` engine. With ``embeddings_c > 0`` as well, the embedding gets a logistic
regression of its own instead of being features of the n-gram model. The light engine has
no embedder and never imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch

from nlp.embeddings import doc_embeddings
from nlp.features import Featurizer
from nlp.models import LinearScorer, Progress, TrainingSettings, train_scorer
from nlp.text import model_text

MODEL_FILE = "model.msgpack"
DEFAULT_CONFIG = {
    "prefix": "",
    "c": 10.0,
    "svm_c": 0.5,
    "nb_c": 0.0,
    "lr": True,
    "svm": True,
    "balanced": False,
    "ngrams": "",
    "pairs": True,
    "lexicon": False,
    "vader": False,
    "negation": False,
    "embeddings_weight": 0.0,
    "embeddings_c": 0.0,
    "folds": 3,
}


class SklearnTextClassifier:
    """Exclusive-class text classifier; ``doc.cats`` gets one probability per label."""

    def __init__(
        self,
        nlp: Language,
        name: str,
        *,
        prefix: str,
        c: float,
        svm_c: float = 0.5,
        nb_c: float = 0.0,
        lr: bool = True,
        svm: bool = True,
        balanced: bool = False,
        ngrams: str = "",
        pairs: bool = True,
        lexicon: bool = False,
        vader: bool = False,
        negation: bool = False,
        embeddings_weight: float = 0.0,
        embeddings_c: float = 0.0,
        folds: int = 3,
    ) -> None:
        self.name = name
        self.prefix = prefix
        self.settings = TrainingSettings(
            c=c,
            svm_c=svm_c,
            nb_c=nb_c,
            use_lr=lr,
            use_svm=svm,
            balanced=balanced,
            embeddings_c=embeddings_c,
            folds=folds,
        )
        self.featurizer = Featurizer(
            ngrams=[name for name in ngrams.split(",") if name],
            pairs=pairs,
            lexicon=lexicon,
            vader=vader,
            negation=negation,
            embeddings_weight=embeddings_weight,
        )
        self.model: LinearScorer | None = None
        #: Out-of-fold calibrated probabilities of the training examples (after ``fit``).
        self.oof_proba: np.ndarray | None = None

    @property
    def uses_embeddings(self) -> bool:
        return self.featurizer.embeddings_weight > 0

    @property
    def labels(self) -> tuple[str, ...]:
        return () if self.model is None else tuple(self.model.classes)

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        embeddings: np.ndarray | None = None,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> None:
        """Train on raw texts (normalised here the same way as at prediction time)."""
        if len(set(labels)) < 2:
            raise ValueError(f"{self.name}: need at least two labels to train")
        if self.uses_embeddings and embeddings is None:
            raise ValueError(f"{self.name}: this classifier needs sentence embeddings")
        self.settings.seed = seed
        self.model, self.oof_proba = train_scorer(
            [model_text(t) for t in texts],
            list(labels),
            featurizer=self.featurizer,
            settings=self.settings,
            embeddings=embeddings if self.uses_embeddings else None,
            progress=progress,
        )

    def predict_proba(
        self, texts: Sequence[str], *, embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"component {self.name!r} is not trained")
        return self.model.predict_proba(
            [model_text(t) for t in texts], embeddings=embeddings if self.uses_embeddings else None
        )

    def _set_cats(self, doc: Doc, probs: np.ndarray) -> None:
        for label, prob in zip(self.labels, probs, strict=True):
            doc.cats[f"{self.prefix}{label}"] = float(prob)

    def __call__(self, doc: Doc) -> Doc:
        for _ in self._pipe_batch([doc]):
            pass
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 256) -> Iterator[Doc]:
        for batch in minibatch(stream, size=batch_size):
            yield from self._pipe_batch(list(batch))

    def _pipe_batch(self, docs: list[Doc]) -> Iterator[Doc]:
        embeddings = doc_embeddings(docs) if self.uses_embeddings else None
        probs = self.predict_proba([doc.text for doc in docs], embeddings=embeddings)
        for doc, row in zip(docs, probs, strict=True):
            self._set_cats(doc, row)
            yield doc

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.model is None:
            raise RuntimeError(f"component {self.name!r} is not trained; nothing to save")
        (path / MODEL_FILE).write_bytes(self.model.to_bytes())

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> SklearnTextClassifier:
        # Plain arrays and strings (msgpack), no pickle: loading runs no code from the file.
        self.model = LinearScorer.from_bytes((Path(path) / MODEL_FILE).read_bytes())
        return self


@Language.factory("crm_classifier", default_config=DEFAULT_CONFIG)
def make_classifier(
    nlp: Language,
    name: str,
    prefix: str,
    c: float,
    svm_c: float,
    nb_c: float,
    lr: bool,
    svm: bool,
    balanced: bool,
    ngrams: str,
    pairs: bool,
    lexicon: bool,
    vader: bool,
    negation: bool,
    embeddings_weight: float,
    embeddings_c: float,
    folds: int,
) -> SklearnTextClassifier:
    return SklearnTextClassifier(
        nlp,
        name,
        prefix=prefix,
        c=c,
        svm_c=svm_c,
        nb_c=nb_c,
        lr=lr,
        svm=svm,
        balanced=balanced,
        ngrams=ngrams,
        pairs=pairs,
        lexicon=lexicon,
        vader=vader,
        negation=negation,
        embeddings_weight=embeddings_weight,
        embeddings_c=embeddings_c,
        folds=folds,
    )


def scores(doc: Doc, prefix: str) -> dict[str, float]:
    """The probabilities one classifier wrote to ``doc.cats``, without the prefix."""
    return {k[len(prefix) :]: v for k, v in doc.cats.items() if k.startswith(prefix)}


__all__ = ["SklearnTextClassifier", "make_classifier", "scores"]
