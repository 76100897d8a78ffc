"""Evaluating a pipeline on labelled rows: accuracy, macro-F1, per-label scores, confusions.

For the intent task the prediction is the analysed intent *after* the out-of-scope
decision: a row labelled ``out_of_scope`` is right when the model rejects it, and an
in-scope row the model rejects is wrong. Macro-F1 averages over the labels of the rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from nlp.analysis import Analysis
from nlp.pipeline import NLU
from nlp.training import TASKS

TOP_CONFUSIONS = 10


@dataclass(frozen=True)
class LabelScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    """What ``crmbot nlu eval`` prints; :meth:`to_dict` is its ``--json`` output."""

    task: str
    n: int
    accuracy: float
    macro_f1: float
    per_label: list[LabelScore]
    confused: list[tuple[str, str, int]]
    unknown_labels: list[str] = field(default_factory=list)
    mean_confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["per_label"] = {s.label: {k: v for k, v in asdict(s).items() if k != "label"}
                             for s in self.per_label}  # fmt: skip
        data["confused"] = [{"label": g, "predicted": p, "count": c} for g, p, c in self.confused]
        return data


def predictions(analyses: Sequence[Analysis], task: str) -> list[str]:
    """The predicted label per analysis: the intent (after the out-of-scope decision)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    return [a.intent if task == "intent" else a.sentiment for a in analyses]


def score(
    gold: Sequence[str], predicted: Sequence[str], *, task: str, known: Sequence[str] = ()
) -> EvalReport:
    """Accuracy, macro-F1 over the gold labels, per-label scores and the top confusions."""
    labels = sorted(set(gold))
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=labels, zero_division=0
    )
    per_label = [
        LabelScore(label, round(float(p), 4), round(float(r), 4), round(float(f), 4), int(s))
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    ]
    confusions = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)
    accuracy = float(np.mean([g == p for g, p in zip(gold, predicted, strict=True)]))
    return EvalReport(
        task=task,
        n=len(gold),
        accuracy=round(accuracy, 4),
        macro_f1=round(float(np.mean(f1)), 4),
        per_label=per_label,
        confused=[(g, p, c) for (g, p), c in confusions.most_common(TOP_CONFUSIONS)],
        unknown_labels=sorted(set(labels) - set(known)) if known else [],
    )


def evaluate(
    nlu: NLU, rows: Sequence[tuple[str, str]], *, task: str = "intent", batch_size: int = 256
) -> EvalReport:
    """Analyse every text of ``rows`` (text, gold label) and score the predictions."""
    analyses: list[Analysis] = []
    texts = [text for text, _ in rows]
    for start in range(0, len(texts), batch_size):
        analyses.extend(nlu.analyze_many(texts[start : start + batch_size]))
    gold = [label for _, label in rows]
    known = [*nlu.intents, "out_of_scope"] if task == "intent" else list(nlu.sentiments)
    report = score(gold, predictions(analyses, task), task=task, known=known)
    confidence = [a.confidence for a in analyses] if task == "intent" else []
    mean = round(float(np.mean(confidence)), 4) if confidence else None
    return replace(report, mean_confidence=mean)
