"""A spaCy text classifier component backed by scikit-learn.

spaCy's bag-of-words ``textcat`` trains slowly on CPU and generalises worse on short,
noisy customer messages than TF-IDF over word and character n-grams with logistic
regression. This component wraps that model so it stays one step of one spaCy ``Language``:
it writes calibrated class probabilities to ``doc.cats`` under ``<prefix><label>`` and is
saved and loaded with ``nlp.to_disk`` / ``spacy.load``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from spacy.language import Language
from spacy.tokens import Doc

from nlp.text import normalize

MODEL_FILE = "model.joblib"


def build_estimator(*, c: float = 10.0, seed: int = 0) -> Pipeline:
    """Word 1-2-grams plus character 2-5-grams (within word bounds), then logistic regression."""
    features = FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    sublinear_tf=True,
                    lowercase=True,
                    token_pattern=r"(?u)\b\w+\b",
                ),
            ),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(2, 5),
                    sublinear_tf=True,
                    lowercase=True,
                    min_df=2,
                ),
            ),
        ]
    )
    classifier = LogisticRegression(C=c, max_iter=3000, random_state=seed)
    return Pipeline([("features", features), ("classifier", classifier)])


class SklearnTextClassifier:
    """Exclusive-class text classifier; ``doc.cats`` gets one probability per label."""

    def __init__(self, nlp: Language, name: str, *, prefix: str, c: float) -> None:
        self.name = name
        self.prefix = prefix
        self.c = c
        self.model: Pipeline | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        if self.model is None:
            return ()
        return tuple(str(label) for label in self.model.classes_)

    def fit(self, texts: Sequence[str], labels: Sequence[str], *, seed: int = 0) -> None:
        """Train on raw texts (normalised here the same way as at prediction time)."""
        if len(set(labels)) < 2:
            raise ValueError(f"{self.name}: need at least two labels to train")
        model = build_estimator(c=self.c, seed=seed)
        model.fit([normalize(t) for t in texts], list(labels))
        self.model = model

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"component {self.name!r} is not trained")
        return self.model.predict_proba([normalize(t) for t in texts])

    def _set_cats(self, doc: Doc, probs: np.ndarray) -> None:
        for label, prob in zip(self.labels, probs, strict=True):
            doc.cats[f"{self.prefix}{label}"] = float(prob)

    def __call__(self, doc: Doc) -> Doc:
        self._set_cats(doc, self.predict_proba([doc.text])[0])
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 256) -> Iterator[Doc]:
        batch: list[Doc] = []
        for doc in stream:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._pipe_batch(batch)
                batch = []
        if batch:
            yield from self._pipe_batch(batch)

    def _pipe_batch(self, docs: list[Doc]) -> Iterator[Doc]:
        probs = self.predict_proba([doc.text for doc in docs])
        for doc, row in zip(docs, probs, strict=True):
            self._set_cats(doc, row)
            yield doc

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.model is None:
            raise RuntimeError(f"component {self.name!r} is not trained; nothing to save")
        joblib.dump(self.model, path / MODEL_FILE)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> SklearnTextClassifier:
        # The file is written by our own training; loading a model is loading trusted code.
        self.model = joblib.load(Path(path) / MODEL_FILE)
        return self


@Language.factory("crm_classifier", default_config={"prefix": "", "c": 10.0})
def make_classifier(nlp: Language, name: str, prefix: str, c: float) -> SklearnTextClassifier:
    return SklearnTextClassifier(nlp, name, prefix=prefix, c=c)


def scores(doc: Doc, prefix: str) -> dict[str, float]:
    """The probabilities one classifier wrote to ``doc.cats``, without the prefix."""
    return {k[len(prefix) :]: v for k, v in doc.cats.items() if k.startswith(prefix)}


__all__: list[Any] = ["SklearnTextClassifier", "make_classifier", "scores"]
