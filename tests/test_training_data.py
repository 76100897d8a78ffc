"""The default training data is ours: well-formed, without duplicates, and not copied from
the public evaluation sets (checked when ../shared/data is present)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from nlp.training import DATA_DIR, TrainingDataError, load_training_data

SHARED_DATA = Path(
    os.environ.get("CRMBOT_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data")
)


def _all_examples() -> list[str]:
    data = load_training_data(DATA_DIR)
    return [t for t, _ in data.intents] + [t for t, _ in data.sentiment] + data.out_of_scope


def test_training_files_load_with_enough_examples():
    data = load_training_data(DATA_DIR)
    per_intent: dict[str, int] = {}
    for _, intent in data.intents:
        per_intent[intent] = per_intent.get(intent, 0) + 1
    assert len(per_intent) == 34 and min(per_intent.values()) >= 60
    assert {label for _, label in data.sentiment} == {"negative", "neutral", "positive"}
    assert len(data.out_of_scope) >= 200


def test_no_example_is_in_two_intents():
    data = load_training_data(DATA_DIR)
    seen: dict[str, str] = {}
    clashes = []
    for text, intent in data.intents:
        key = text.lower()
        if key in seen and seen[key] != intent:
            clashes.append((text, seen[key], intent))
        seen[key] = intent
    assert clashes == []


def test_missing_or_broken_data_names_the_file(tmp_path):
    with pytest.raises(TrainingDataError, match=r"intents\.yml: training data file not found"):
        load_training_data(tmp_path)
    (tmp_path / "intents.yml").write_text("intents: {a: {examples: [x]}, b: {examples: 3}}")
    with pytest.raises(TrainingDataError, match=r"intents\.b\.examples must be a list"):
        load_training_data(tmp_path)


def test_no_example_copied_from_the_public_datasets():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public datasets not found at {SHARED_DATA} (set CRMBOT_SHARED_DATA)")
    theirs: set[str] = set()
    for path in SHARED_DATA.glob("*/*.csv"):
        with path.open(newline="", encoding="utf-8") as handle:
            theirs.update(
                row["text"].lower().strip() for row in csv.DictReader(handle) if row.get("text")
            )
    copied = sorted({t for t in _all_examples() if t.lower().strip() in theirs})
    assert copied == []
