"""`crmbot nlu ...`: train, evaluate and try the NLU pipeline.

    crmbot nlu train --data FILE.csv --out DIR [--task intent|sentiment] [--engine ...]
    crmbot nlu train --out DIR                    # the default model, from nlp/data/*.yml
    crmbot nlu eval [--model DIR] --data FILE.csv [--task ...] [--json] [--engine ...]
    crmbot nlu predict [--model DIR] "text" [--json]
    crmbot nlu feedback --out FILE.csv           # intents customers chose on "did you mean"

The engine is ``light`` unless CRMBOT_NLU_EMBEDDINGS names a sentence-transformers model
(then ``embeddings``); ``--engine`` chooses explicitly.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bot.cli.common import console, err, fail, get_settings

if TYPE_CHECKING:
    from bot.settings import Settings
    from nlp.evaluation import EvalReport
    from nlp.pipeline import NLU

nlu_app = typer.Typer(help="Train, evaluate and try the NLU pipeline.", no_args_is_help=True)

ENGINES = ("light", "embeddings")
TaskOption = Annotated[
    str, typer.Option(help="What the CSV labels: intent (column intent) or sentiment.")
]
EngineOption = Annotated[
    str | None,
    typer.Option(
        help="light (n-grams, no torch) or embeddings (sentence-transformers). "
        "Default: embeddings when CRMBOT_NLU_EMBEDDINGS is set, else light."
    ),
]
ModelOption = Annotated[
    Path | None,
    typer.Option(
        help="A trained pipeline folder. Default: CRMBOT_MODEL_PATH, else the default model."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _embeddings(engine: str | None, settings: Settings) -> str | None:
    """The embedding model to use, or None for the light engine."""
    from nlp.embeddings import DEFAULT_EMBEDDINGS_MODEL, embeddings_available

    configured = getattr(settings, "nlu_embeddings", None) or os.environ.get(
        "CRMBOT_NLU_EMBEDDINGS"
    )
    if engine is not None and engine not in ENGINES:
        raise fail(f"unknown engine {engine!r}: use light or embeddings")
    if engine == "light" or (engine is None and not configured):
        return None
    name = str(configured or DEFAULT_EMBEDDINGS_MODEL)
    reason = embeddings_available(name)
    if reason:
        raise fail(f"the embeddings engine cannot run: {reason}")
    return name


def _check_task(task: str) -> str:
    from nlp.csvdata import check_task
    from nlp.training import TrainingDataError

    try:
        return check_task(task)
    except TrainingDataError as exc:
        raise fail(str(exc)) from None


def _progress():
    """A progress callback that prints each step with the time it started at."""
    start = time.perf_counter()

    def step(message: str) -> None:
        err.print(f"[dim]{time.perf_counter() - start:6.1f}s[/] {message}", highlight=False)

    return step


def _load(model: Path | None, engine: str | None, settings: Settings) -> NLU:
    from nlp.embeddings import EmbeddingsUnavailable
    from nlp.pipeline import load_or_train

    path = model if model is not None else (settings.model_path if engine is None else None)
    embeddings = _embeddings(engine, settings) if path is None else None
    try:
        with console.status("Loading the NLU model…"):
            return load_or_train(model_path=path, embeddings=embeddings, progress=_progress())
    except (FileNotFoundError, OSError, EmbeddingsUnavailable) as exc:
        raise fail(str(exc)) from None


@nlu_app.command("train")
def nlu_train(
    out: Annotated[
        Path, typer.Option("--out", "--output", help="Folder to write the trained pipeline to.")
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            help="CSV with the columns text,intent (or text,sentiment with --task sentiment). "
            "A folder means YAML training data like nlp/data; default: the bundled examples."
        ),
    ] = None,
    task: TaskOption = "intent",
    engine: EngineOption = None,
) -> None:
    """Train a pipeline and save it (use it with CRMBOT_MODEL_PATH=DIR or --model DIR).

    With a CSV, the classifier for --task is trained on it and the other one (sentiment or
    intent) is the default model's, so the result is still a full pipeline.
    """
    from nlp.csvdata import read_labelled_csv
    from nlp.embeddings import EmbeddingsUnavailable
    from nlp.pipeline import NLU, load_or_train
    from nlp.training import (
        DATA_DIR,
        TrainingDataError,
        load_training_data,
        train_pipeline,
        train_task,
    )

    settings = get_settings()
    task = _check_task(task)
    embeddings = _embeddings(engine, settings)
    if out.exists() and not out.is_dir():
        raise fail(f"{out} is a file; --out needs a folder")
    progress = _progress()
    try:
        if data is None or data.is_dir():
            training = load_training_data(data or DATA_DIR)
            progress(f"training intent and sentiment from {data or DATA_DIR}")
            nlp = train_pipeline(training, embeddings=embeddings, progress=progress)
            count, labels = len(training.intents), len(training.intent_names)
        else:
            rows = read_labelled_csv(data, task=task)
            progress(
                f"read {len(rows):,} rows with {len({r[1] for r in rows})} labels from {data}"
            )
            base = load_or_train(embeddings=embeddings, progress=progress)
            nlp = train_task(task, rows, base=base.nlp, progress=progress)
            count, labels = len(rows), len({label for _, label in rows})
    except TrainingDataError as exc:
        raise fail(str(exc)) from None
    except EmbeddingsUnavailable as exc:
        raise fail(str(exc)) from None
    NLU(nlp).save(out)
    engine_name = "embeddings" if embeddings else "light"
    console.print(
        f"Trained {task if data and not data.is_dir() else 'intent and sentiment'} "
        f"({engine_name} engine) on {count:,} examples, {labels} labels. Saved to {out}.\n"
        f"Use it with CRMBOT_MODEL_PATH={out}, or try `crmbot nlu predict --model {out} TEXT`."
    )


@nlu_app.command("eval")
def nlu_eval(
    data: Annotated[
        Path, typer.Option(help="CSV with the columns text,intent (or text,sentiment).")
    ],
    model: ModelOption = None,
    task: TaskOption = "intent",
    json_output: JsonOption = False,
    engine: EngineOption = None,
) -> None:
    """Accuracy and macro-F1 of a pipeline on a labelled CSV, per label and most confused.

    For intents, a row labelled out_of_scope is right when the model rejects the message.
    """
    from nlp.csvdata import read_labelled_csv
    from nlp.evaluation import evaluate
    from nlp.training import TrainingDataError

    settings = get_settings()
    task = _check_task(task)
    try:
        rows = read_labelled_csv(data, task=task, min_labels=1)
    except TrainingDataError as exc:
        raise fail(str(exc)) from None
    nlu = _load(model, engine, settings)
    with console.status(f"Analysing {len(rows):,} messages…"):
        report = evaluate(nlu, rows, task=task)
    if json_output:
        typer.echo(json.dumps({**report.to_dict(), "engine": nlu.engine}))
        return
    _print_report(report, engine=nlu.engine)


def _print_report(report: EvalReport, *, engine: str) -> None:
    table = Table("label", "precision", "recall", "F1", "n", title=f"{report.task} by label")
    for score in sorted(report.per_label, key=lambda s: s.f1):
        table.add_row(
            score.label,
            f"{score.precision:.3f}",
            f"{score.recall:.3f}",
            f"{score.f1:.3f}",
            str(score.support),
        )
    console.print(table)
    if report.confused:
        pairs = Table("label", "predicted as", "count", title="most confused")
        for gold, predicted, count in report.confused:
            pairs.add_row(gold, predicted, str(count))
        console.print(pairs)
    if report.unknown_labels:
        err.print(f"Labels the model does not know: {', '.join(report.unknown_labels)}")
    console.print(
        f"n={report.n:,}  accuracy={report.accuracy:.4f}  macro_f1={report.macro_f1:.4f}  "
        f"engine={engine}",
        highlight=False,
    )


@nlu_app.command("predict")
def nlu_predict(
    text: Annotated[str, typer.Argument(help="A customer message.")],
    model: ModelOption = None,
    json_output: JsonOption = False,
    engine: EngineOption = None,
) -> None:
    """Show the full analysis of one message: intent, ranking, sentiment, entities."""
    settings = get_settings()
    nlu = _load(model, engine, settings)
    result = nlu.analyze(text)
    clarify = nlu.needs_clarification(result)
    if json_output:
        data = {
            "intent": result.intent,
            "confidence": result.confidence,
            "top_intent": result.top_intent,
            "intent_ranking": [list(pair) for pair in result.intent_ranking],
            "needs_clarification": clarify,
            "sentiment": result.sentiment,
            "sentiment_score": result.sentiment_score,
            "entities": result.entities_as_dicts(),
            "engine": nlu.engine,
        }
        typer.echo(json.dumps(data, default=str))
        return
    band = (
        "ask to clarify"
        if clarify
        else "out of scope"
        if result.intent == "out_of_scope"
        else "confident"
    )
    console.print(
        f"intent: {result.intent} (confidence {result.confidence:.2f}, {band})", highlight=False
    )
    ranking = ", ".join(f"{name} {p:.2f}" for name, p in result.intent_ranking)
    console.print(f"ranking: {ranking}", highlight=False, markup=False)
    console.print(
        f"sentiment: {result.sentiment} ({result.sentiment_score:+.2f})", highlight=False
    )
    for entity in result.entities:
        console.print(f"entity: {entity.label} {entity.text!r} → {entity.value}", markup=False)
    console.print(f"engine: {nlu.engine}", highlight=False)


@nlu_app.command("analyze", hidden=True)
def nlu_analyze(text: Annotated[str, typer.Argument(help="A customer message.")]) -> None:
    """Same as `crmbot nlu predict TEXT` (kept for older scripts)."""
    nlu_predict(text)


@nlu_app.command("feedback")
def nlu_feedback(
    out: Annotated[
        Path, typer.Option("--out", "--output", help="CSV file to write (text,intent).")
    ],
) -> None:
    """Write the messages whose intent a customer chose on the bot's "did you mean" buttons,
    as a text,intent CSV: add it to your training data for `crmbot nlu train`."""
    import csv

    from bot.services.clarify import labelled_messages
    from db.engine import make_engine, make_session_factory, session_scope

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            rows = labelled_messages(session)
    finally:
        engine.dispose()
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        writer.writerows(rows)
    console.print(f"Wrote {len(rows):,} labelled messages to {out}.", highlight=False)
