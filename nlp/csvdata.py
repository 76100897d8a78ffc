"""Labelled CSV files for training and evaluation: ``text,intent`` or ``text,sentiment``.

A bad file raises :class:`~nlp.training.TrainingDataError` with a message that names the
file and what is wrong (and the line numbers of bad rows), before anything is trained.
"""

from __future__ import annotations

import csv
from pathlib import Path

from nlp.analysis import SENTIMENTS
from nlp.training import TASKS, TrainingDataError

MAX_LINES_NAMED = 5


def _lines(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:MAX_LINES_NAMED])
    more = f" and {len(numbers) - MAX_LINES_NAMED} more" if len(numbers) > MAX_LINES_NAMED else ""
    return f"line{'s' if len(numbers) > 1 else ''} {shown}{more}"


def check_task(task: str) -> str:
    """The task name, or TrainingDataError for an unknown one."""
    if task not in TASKS:
        raise TrainingDataError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    return task


def read_labelled_csv(
    path: Path, *, task: str = "intent", min_labels: int = 2
) -> list[tuple[str, str]]:
    """(text, label) rows of a CSV with the columns ``text`` and ``<task>``.

    Other columns are ignored. Labels are stripped; sentiment labels are lower-cased and
    must be negative, neutral or positive. Raises TrainingDataError for a missing file, a
    missing column, empty texts or labels, or fewer than ``min_labels`` distinct labels.
    """
    check_task(task)
    if not path.is_file():
        raise TrainingDataError(f"{path}: file not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in ("text", task) if c not in columns]
            if missing:
                found = ", ".join(columns) if columns else "none (empty file)"
                raise TrainingDataError(
                    f"{path}: missing column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)} (a {task} file needs the columns text,{task}; "
                    f"found: {found})"
                )
            reader.fieldnames = columns
            raw = [(n, row.get("text"), row.get(task)) for n, row in enumerate(reader, 2)]
    except UnicodeDecodeError:
        raise TrainingDataError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as exc:
        raise TrainingDataError(f"{path}: not a valid CSV file: {exc}") from None
    rows = [(n, (text or "").strip(), (label or "").strip()) for n, text, label in raw]
    if not rows:
        raise TrainingDataError(f"{path}: no rows")
    empty_labels = [n for n, _, label in rows if not label]
    if empty_labels:
        raise TrainingDataError(f"{path}: empty {task} label on {_lines(empty_labels)}")
    empty_texts = [n for n, text, _ in rows if not text]
    if empty_texts:
        raise TrainingDataError(f"{path}: empty text on {_lines(empty_texts)}")
    if task == "sentiment":
        rows = [(n, text, label.lower()) for n, text, label in rows]
        unknown = [n for n, _, label in rows if label not in SENTIMENTS]
        if unknown:
            raise TrainingDataError(
                f"{path}: sentiment must be one of {', '.join(SENTIMENTS)}; "
                f"found something else on {_lines(unknown)}"
            )
    labels = {label for _, _, label in rows}
    if len(labels) < min_labels:
        raise TrainingDataError(
            f"{path}: only one {task} label ({next(iter(labels))!r}); "
            f"a classifier needs at least {min_labels} different labels"
        )
    return [(text, label) for _, text, label in rows]
