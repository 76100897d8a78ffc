"""A calibrated linear text classifier: logistic regression plus a linear SVM, stacked.

Training (scikit-learn): both models see the same features. Their scores are combined as
``softmax(a * lr_logits + b * svm_scores)``; ``a`` and ``b`` are fitted on out-of-fold
scores (k-fold cross-fitting on the training data) by minimising the negative
log-likelihood. That one step is both the ensemble's weighting and the calibration
(temperature scaling): a confidence of 0.8 means right about 80 % of the time on data like
the training data.

Since both models are linear, the trained ensemble folds into one matrix:
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
from scipy.special import log_softmax, softmax

from nlp.features import Block, FeatureMap, Featurizer

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


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
        z = self.features.transform(texts, embeddings) @ self.coef + self.intercept
        return softmax(np.asarray(z, dtype=np.float64), axis=1)

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
        features = FeatureMap(blocks, bool(raw["lexicon"]), float(raw["embeddings_weight"]))
        return cls(
            features,
            [str(c) for c in raw["classes"]],
            np.asarray(raw["coef"], dtype=np.float32),
            np.asarray(raw["intercept"], dtype=np.float64),
        )


@dataclass
class _Fitted:
    features: FeatureMap
    lr: Any
    svm: Any

    def scores(self, model: Any, x: Any) -> np.ndarray:
        """Decision scores as an (n, n_classes) array, also for two classes."""
        z = model.decision_function(x)
        return np.column_stack([-z / 2, z / 2]) if z.ndim == 1 else np.asarray(z)

    def matrix(self, model: Any) -> tuple[np.ndarray, np.ndarray]:
        coef, intercept = np.asarray(model.coef_), np.asarray(model.intercept_)
        if coef.shape[0] == 1:
            coef, intercept = (
                np.vstack([-coef / 2, coef / 2]),
                np.hstack([-intercept / 2, intercept / 2]),
            )
        return coef.T, intercept


@dataclass
class TrainingSettings:
    """Hyper-parameters of :func:`train_scorer` (fixed per task in nlp/training.py)."""

    c: float = 10.0
    svm_c: float = 0.5
    use_lr: bool = True
    use_svm: bool = True
    balanced: bool = False
    folds: int = 3
    seed: int = 0


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
    weight = "balanced" if settings.balanced else None
    lr = svm = None
    if settings.use_lr:
        lr = LogisticRegression(C=settings.c, max_iter=3000, class_weight=weight).fit(x, y)
    if settings.use_svm:
        svm = LinearSVC(C=settings.svm_c, class_weight=weight, random_state=settings.seed)
        svm.fit(x, y)
    return _Fitted(features, lr, svm)


def _fit_weights(
    lr_z: np.ndarray | None, svm_z: np.ndarray | None, gold: np.ndarray
) -> np.ndarray:
    """(a, b) >= 0 minimising the negative log-likelihood of the held-out labels."""
    from scipy.optimize import minimize

    rows = np.arange(len(gold))

    def nll(log_w: np.ndarray) -> float:
        a, b = np.exp(log_w)
        z = (a * lr_z if lr_z is not None else 0.0) + (b * svm_z if svm_z is not None else 0.0)
        return float(-log_softmax(z, axis=1)[rows, gold].mean())

    result = minimize(nll, np.zeros(2), method="L-BFGS-B", bounds=[(-6.0, 6.0)] * 2)
    a, b = np.exp(result.x)
    log.debug("calibrated weights a=%.3f b=%.3f (held-out NLL %.3f)", a, b, result.fun)
    return np.array([a if lr_z is not None else 0.0, b if svm_z is not None else 0.0])


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
    weights = np.array([float(settings.use_lr), float(settings.use_svm)])
    oof = None
    if folds >= 2:
        lr_oof = np.zeros((len(y), len(classes)))
        svm_oof = np.zeros_like(lr_oof)
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
            if fitted.lr is not None:
                lr_oof[held] = fitted.scores(fitted.lr, x)
            if fitted.svm is not None:
                svm_oof[held] = fitted.scores(fitted.svm, x)
        weights = _fit_weights(
            lr_oof if settings.use_lr else None, svm_oof if settings.use_svm else None, gold
        )
        oof = softmax(weights[0] * lr_oof + weights[1] * svm_oof, axis=1)
    else:
        log.warning("too few examples per label to calibrate; probabilities are uncalibrated")
    step("final fit on all examples")
    fitted = _fit(featurizer, settings, texts, y, embeddings)
    parts = [
        (weight, *fitted.matrix(model))
        for weight, model in zip(weights, (fitted.lr, fitted.svm), strict=True)
        if model is not None
    ]
    coef = sum(weight * model_coef for weight, model_coef, _ in parts)
    intercept = sum(weight * model_intercept for weight, _, model_intercept in parts)
    scorer = LinearScorer(
        fitted.features, classes, np.asarray(coef, np.float32), np.asarray(intercept)
    )
    return scorer, oof
