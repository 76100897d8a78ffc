"""Training data loading and training of the default pipeline.

The default examples live in ``nlp/data/*.yml`` and are written by the crmbot authors.
A business trains on its own data with the same format (see ``nlp/data/README.md``).
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sklearn
import spacy
import yaml
from spacy.language import Language

from nlp.analysis import OUT_OF_SCOPE
from nlp.classifier import SklearnTextClassifier

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).with_name("data")
# Bump when the pipeline's architecture changes, so cached models are retrained.
PIPELINE_VERSION = "1"
DEFAULT_OOS_THRESHOLD = 0.30
INTENT_PREFIX = "intent:"
SENTIMENT_PREFIX = "sentiment:"


class TrainingDataError(ValueError):
    """The training data file is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class TrainingData:
    intents: list[tuple[str, str]]
    sentiment: list[tuple[str, str]]
    out_of_scope: list[str]

    @property
    def intent_names(self) -> list[str]:
        return sorted({label for _, label in self.intents})


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise TrainingDataError(f"{path}: training data file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TrainingDataError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TrainingDataError(f"{path}: expected a mapping at the top level")
    return data


def _strings(path: Path, where: str, items: object) -> list[str]:
    if not isinstance(items, list) or not all(isinstance(i, str | int | float) for i in items):
        raise TrainingDataError(f"{path}: {where} must be a list of strings")
    return [str(i).strip() for i in items if str(i).strip()]


def load_training_data(data_dir: Path = DATA_DIR) -> TrainingData:
    """Read intents.yml, sentiment.yml and out_of_scope.yml from ``data_dir``."""
    intents_path = data_dir / "intents.yml"
    raw_intents = _read_yaml(intents_path).get("intents")
    if not isinstance(raw_intents, dict) or len(raw_intents) < 2:
        raise TrainingDataError(f"{intents_path}: 'intents' must map at least two intent names")
    intents = [
        (text, str(name))
        for name, body in raw_intents.items()
        for text in _strings(
            intents_path, f"intents.{name}.examples", (body or {}).get("examples")
        )
    ]
    sentiment_path = data_dir / "sentiment.yml"
    raw_labels = _read_yaml(sentiment_path).get("labels")
    if not isinstance(raw_labels, dict):
        raise TrainingDataError(f"{sentiment_path}: 'labels' must map sentiment labels")
    sentiment = [
        (text, str(label))
        for label, items in raw_labels.items()
        for text in _strings(sentiment_path, f"labels.{label}", items)
    ]
    oos_path = data_dir / "out_of_scope.yml"
    out_of_scope = (
        _strings(oos_path, "examples", _read_yaml(oos_path).get("examples"))
        if oos_path.exists()
        else []
    )
    return TrainingData(intents=intents, sentiment=sentiment, out_of_scope=out_of_scope)


def data_fingerprint(data_dir: Path = DATA_DIR) -> str:
    """A short hash of the training data and pipeline version: names the cached model."""
    digest = hashlib.sha256(
        f"{PIPELINE_VERSION}|{sklearn.__version__}|{spacy.__version__}".encode()
    )
    for name in ("intents.yml", "sentiment.yml", "out_of_scope.yml"):
        path = data_dir / name
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def train_pipeline(
    data: TrainingData,
    *,
    products: Sequence[str] = (),
    oos_threshold: float = DEFAULT_OOS_THRESHOLD,
    seed: int = 0,
) -> Language:
    """Build a blank English pipeline with entities, intent and sentiment, and train it."""
    from nlp.entities import add_entity_ruler

    random.seed(seed)
    nlp = spacy.blank("en")
    add_entity_ruler(nlp, products=list(products))
    intent = nlp.add_pipe("crm_classifier", name="intent", config={"prefix": INTENT_PREFIX})
    assert isinstance(intent, SklearnTextClassifier)
    sentiment = nlp.add_pipe(
        "crm_classifier", name="sentiment", config={"prefix": SENTIMENT_PREFIX, "c": 5.0}
    )
    assert isinstance(sentiment, SklearnTextClassifier)
    intent_rows = list(data.intents) + [(t, OUT_OF_SCOPE) for t in data.out_of_scope]
    log.info("training intent classifier on %d examples", len(intent_rows))
    intent.fit([t for t, _ in intent_rows], [label for _, label in intent_rows], seed=seed)
    log.info("training sentiment classifier on %d examples", len(data.sentiment))
    sentiment.fit(
        [t for t, _ in data.sentiment], [label for _, label in data.sentiment], seed=seed
    )
    nlp.meta["name"] = "crmbot_shop"
    nlp.meta["version"] = "0.1.0"
    nlp.meta["crmbot"] = {"oos_threshold": oos_threshold, "pipeline_version": PIPELINE_VERSION}
    return nlp
