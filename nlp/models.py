"""A calibrated linear text classifier: logistic regressions and/or a linear SVM, stacked.

Training (scikit-learn): the base models (logistic regression, a linear SVM and a
naive-Bayes-weighted logistic regression (:class:`NBLogistic`) on the n-gram features, as
the settings choose; optionally a logistic regression of its own on the sentence embedding)
are combined as ``softmax(a * lr_logits + b * svm_scores + c * embedding_logits)``; the
weights are fitted on out-of-fold scores (k-fold cross-fitting on the training data) by
minimising the negative log-likelihood. That one step is both the ensemble's weighting and
the calibration (temperature scaling): a confidence of 0.8 means right about 80 % of the
time on data like the training data. A ``balanced`` model (sentiment) also gets per-label
offsets that maximise macro-F1 on those out-of-fold scores.

Since every base model is linear, the trained ensemble folds into one matrix:
:class:`LinearScorer` holds the compiled features, that matrix and the intercepts, and
predicts with numpy and scipy only (no scikit-learn import, no pickle: fast to load).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import srsly

from nlp.features import Block, FeatureMap, Featurizer

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax (numpy, so that predicting never imports scipy)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


@dataclass
class LinearScorer:
    """Compiled classifier: ``softmax(features(texts) @ coef + intercept)``."""

    features: FeatureMap
    classes: list[str]
    coef: np.ndarray  # (n_features, n_classes), float32
    intercept: np.ndarray  # (n_classes,)

    def predict_proba(
        self, texts: Sequence[str], *, embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        """Calibrated probabilities, columns in the order of :attr:`classes`."""
        z = self.features.scores(texts, self.coef, embeddings) + self.intercept
        return softmax(z)

    def to_bytes(self) -> bytes:
        blocks = []
        for block in self.features.blocks:
            terms = [""] * len(block.vocabulary)
            for term, index in block.vocabulary.items():
                terms[index] = term
            blocks.append({"analyzer": block.analyzer, "terms": terms, "idf": block.idf})
        return srsly.msgpack_dumps(
            {
                "blocks": blocks,
                "lexicon": self.features.lexicon,
                "vader": self.features.vader,
                "embeddings_weight": self.features.embeddings_weight,
                "classes": self.classes,
                "coef": self.coef,
                "intercept": self.intercept,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LinearScorer:
        raw = srsly.msgpack_loads(data)
        blocks = [
            Block(b["analyzer"], {t: i for i, t in enumerate(b["terms"])}, np.asarray(b["idf"]))
            for b in raw["blocks"]
        ]
        features = FeatureMap(
            blocks,
            bool(raw["lexicon"]),
            float(raw["embeddings_weight"]),
            bool(raw.get("vader", False)),
        )
        return cls(
            features,
            [str(c) for c in raw["classes"]],
            np.asarray(raw["coef"], dtype=np.float32),
            np.asarray(raw["intercept"], dtype=np.float64),
        )


@dataclass
class _Base:
    """One fitted base model and the feature columns it sees (the rest weigh zero)."""

    model: Any
    columns: slice

    def scores(self, x: Any) -> np.ndarray:
        """Decision scores as an (n, n_classes) array, also for two classes."""
        z = self.model.decision_function(_columns(x, self.columns))
        return np.column_stack([-z / 2, z / 2]) if z.ndim == 1 else np.asarray(z)

    def matrix(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(coef, intercept) over all ``width`` feature columns, for ``x @ coef + intercept``."""
        coef, intercept = np.asarray(self.model.coef_), np.asarray(self.model.intercept_)
        if coef.shape[0] == 1:
            coef, intercept = (
                np.vstack([-coef / 2, coef / 2]),
                np.hstack([-intercept / 2, intercept / 2]),
            )
        full = np.zeros((width, coef.shape[0]))
        full[self.columns] = coef.T
        return full, intercept


class NBLogistic:
    """One-vs-rest logistic regressions on naive-Bayes-weighted n-grams (NBSVM's idea, Wang
    & Manning 2012: "Baselines and Bigrams"): for each label, every n-gram column is scaled
    by the log-ratio of how often it occurs in that label's texts and in the others', so
    the regression starts from what each word says about the label. Still linear: the
    scaling folds into :attr:`coef_`. Columns after ``sparse_width`` (lexicon, embedding)
    are left unscaled."""

    def __init__(
        self, *, c: float, sparse_width: int, alpha: float = 1.0, balanced: bool = False
    ) -> None:
        self.c, self.sparse_width, self.alpha, self.balanced = c, sparse_width, alpha, balanced

    def fit(self, x: Any, y: np.ndarray) -> NBLogistic:
        from sklearn.linear_model import LogisticRegression

        present = (x[:, : self.sparse_width] != 0).astype(np.float64).tocsr()
        labels = np.unique(y)
        coef, intercept = [], []
        for label in labels:
            mine = y == label
            ratio = np.ones(x.shape[1])
            ratio[: self.sparse_width] = self._ratio(present, mine)
            scaled = x @ _diagonal(ratio)
            model = LogisticRegression(
                C=self.c, max_iter=3000, class_weight="balanced" if self.balanced else None
            ).fit(scaled, mine)
            coef.append(model.coef_[0] * ratio)
            intercept.append(model.intercept_[0])
        self.classes_ = labels
        self.coef_ = np.vstack(coef)
        self.intercept_ = np.asarray(intercept)
        return self

    def _ratio(self, present: Any, mine: np.ndarray) -> np.ndarray:
        p = self.alpha + np.asarray(present[mine].sum(axis=0)).ravel()
        q = self.alpha + np.asarray(present[~mine].sum(axis=0)).ravel()
        return np.asarray(np.log((p / p.sum()) / (q / q.sum())))

    def decision_function(self, x: Any) -> np.ndarray:
        return np.asarray(x @ self.coef_.T) + self.intercept_


def _diagonal(values: np.ndarray) -> Any:
    import scipy.sparse as sp

    return sp.diags(values, format="csr")


def _columns(x: Any, columns: slice) -> Any:
    return x if columns == slice(None) else x[:, columns]


@dataclass
class _Fitted:
    features: FeatureMap
    width: int
    bases: list[_Base]


@dataclass
class TrainingSettings:
    """Hyper-parameters of :func:`train_scorer` (fixed per task in nlp/training.py).

    ``balanced``: every label counts the same, whatever its number of examples: class
    weights in training, and decision offsets per label chosen on the out-of-fold
    predictions to maximise macro-F1 (with at least ``MIN_OFFSET_ROWS`` examples).
    ``nb_c`` > 0: a naive-Bayes-weighted logistic regression (:class:`NBLogistic`, that C)
    joins the base models.
    ``embeddings_c`` > 0: the sentence embedding gets a logistic regression of its own
    (that C) instead of being features of the n-gram models; the calibration weighs both.
    """

    c: float = 10.0
    svm_c: float = 0.5
    nb_c: float = 0.0
    use_lr: bool = True
    use_svm: bool = True
    balanced: bool = False
    embeddings_c: float = 0.0
    folds: int = 3
    seed: int = 0


#: Fewer out-of-fold predictions than this are too few to choose decision offsets on.
MIN_OFFSET_ROWS = 200


def _fit(
    featurizer: Featurizer,
    settings: TrainingSettings,
    texts: Sequence[str],
    y: np.ndarray,
    embeddings: np.ndarray | None,
) -> _Fitted:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    features = featurizer.fit(texts)
    x = features.transform(texts, embeddings)
    width = x.shape[1]
    weight = "balanced" if settings.balanced else None
    own = settings.embeddings_c > 0 and embeddings is not None
    # The embedding is the last block of columns (see FeatureMap.dense).
    ngrams = (
        slice(0, width - len(embeddings[0])) if own and embeddings is not None else slice(None)
    )
    bases = []
    if settings.use_lr:
        lr = LogisticRegression(C=settings.c, max_iter=3000, class_weight=weight)
        bases.append(_Base(lr.fit(_columns(x, ngrams), y), ngrams))
    if settings.use_svm:
        svm = LinearSVC(C=settings.svm_c, class_weight=weight, random_state=settings.seed)
        bases.append(_Base(svm.fit(_columns(x, ngrams), y), ngrams))
    if settings.nb_c > 0:
        nb = NBLogistic(
            c=settings.nb_c, sparse_width=features.sparse_width, balanced=settings.balanced
        )
        bases.append(_Base(nb.fit(_columns(x, ngrams), y), ngrams))
    if own:
        dense = slice(ngrams.stop, width)
        lr = LogisticRegression(C=settings.embeddings_c, max_iter=3000, class_weight=weight)
        bases.append(_Base(lr.fit(x[:, dense].toarray(), y), dense))
    return _Fitted(features, width, bases)


def _fit_weights(scores: list[np.ndarray], gold: np.ndarray) -> np.ndarray:
    """Weights >= 0 of the base models minimising the NLL of the held-out labels."""
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    rows = np.arange(len(gold))

    def nll(log_w: np.ndarray) -> float:
        z = sum(w * s for w, s in zip(np.exp(log_w), scores, strict=True))
        return float(-log_softmax(z, axis=1)[rows, gold].mean())

    k = len(scores)
    result = minimize(nll, np.zeros(k), method="L-BFGS-B", bounds=[(-6.0, 6.0)] * k)
    log.debug("calibrated weights %s (held-out NLL %.3f)", np.exp(result.x), result.fun)
    return np.exp(result.x)


def macro_f1(gold: np.ndarray, predicted: np.ndarray, n: int) -> float:
    support = np.bincount(gold, minlength=n)
    found = np.bincount(predicted, minlength=n)
    right = np.bincount(gold[gold == predicted], minlength=n)
    f1 = 2 * right / np.maximum(support + found, 1)
    return float(f1[support > 0].mean())


def fit_offsets(z: np.ndarray, gold: np.ndarray, *, rounds: int = 2) -> np.ndarray:
    """Per-label offsets in [-1, 1] added to ``z`` that maximise macro-F1 (coordinate ascent)."""
    n = z.shape[1]
    offsets = np.zeros(n)
    grid = np.round(np.arange(-1.0, 1.0001, 0.05), 2)
    best = macro_f1(gold, z.argmax(1), n)
    for _ in range(rounds):
        for label in range(n):
            for value in grid:
                trial = offsets.copy()
                trial[label] = value
                score = macro_f1(gold, (z + trial).argmax(1), n)
                if score > best + 1e-9:
                    best, offsets = score, trial
    log.debug("macro-F1 offsets %s (held-out macro-F1 %.3f)", offsets, best)
    return offsets - offsets.mean()


def train_scorer(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    featurizer: Featurizer,
    settings: TrainingSettings,
    embeddings: np.ndarray | None = None,
    progress: Progress | None = None,
) -> tuple[LinearScorer, np.ndarray | None]:
    """Cross-fit for calibration, fit on all data, compile. Also returns the out-of-fold
    calibrated probabilities (None when a label has too few examples to cross-fit)."""
    from sklearn.model_selection import StratifiedKFold

    step = progress or (lambda _: None)
    y = np.asarray(labels, dtype=object)
    classes = sorted(set(labels))
    gold = np.searchsorted(np.array(classes, dtype=object), y)
    folds = min(settings.folds, int(np.bincount(gold).min()))
    weights: np.ndarray | None = None
    offsets = np.zeros(len(classes))
    oof = None
    if folds >= 2:
        held_scores: list[np.ndarray] = []
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=settings.seed)
        for k, (train, held) in enumerate(splitter.split(np.zeros(len(y)), y), 1):
            step(f"calibration fold {k}/{folds}")
            fitted = _fit(
                featurizer,
                settings,
                [texts[i] for i in train],
                y[train],
                embeddings[train] if embeddings is not None else None,
            )
            x = fitted.features.transform(
                [texts[i] for i in held], embeddings[held] if embeddings is not None else None
            )
            if not held_scores:
                held_scores = [np.zeros((len(y), len(classes))) for _ in fitted.bases]
            for scores, base in zip(held_scores, fitted.bases, strict=True):
                scores[held] = base.scores(x)
        weights = _fit_weights(held_scores, gold)
        z = sum(w * s for w, s in zip(weights, held_scores, strict=True))
        if settings.balanced and len(gold) >= MIN_OFFSET_ROWS:
            offsets = fit_offsets(np.asarray(z), gold)
        oof = softmax(z + offsets)
    else:
        log.warning("too few examples per label to calibrate; probabilities are uncalibrated")
    step("final fit on all examples")
    fitted = _fit(featurizer, settings, texts, y, embeddings)
    if weights is None:
        weights = np.ones(len(fitted.bases))
    coef = np.zeros((fitted.width, len(classes)))
    intercept = offsets.copy()
    for weight, base in zip(weights, fitted.bases, strict=True):
        base_coef, base_intercept = base.matrix(fitted.width)
        coef += weight * base_coef
        intercept += weight * base_intercept
    scorer = LinearScorer(fitted.features, classes, coef.astype(np.float32), intercept)
    return scorer, oof
