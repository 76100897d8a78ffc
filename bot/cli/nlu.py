"""`crmbot nlu ...`: train and try the NLU pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import console, err, get_settings

nlu_app = typer.Typer(help="Train and try the NLU pipeline.", no_args_is_help=True)


@nlu_app.command("train")
def nlu_train(
    output: Annotated[Path, typer.Option(help="Folder to write the trained pipeline to.")],
    data: Annotated[
        Path | None,
        typer.Option(help="Folder with intents.yml, sentiment.yml and out_of_scope.yml."),
    ] = None,
) -> None:
    """Train the NLU pipeline and save it (then set CRMBOT_MODEL_PATH to use it)."""
    from nlp.pipeline import NLU
    from nlp.training import DATA_DIR, TrainingDataError, load_training_data, train_pipeline

    get_settings()
    try:
        training = load_training_data(data or DATA_DIR)
    except TrainingDataError as exc:
        err.print(f"[bold red]Training data error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    with console.status(f"Training on {len(training.intents):,} intent examples…"):
        nlu = NLU(train_pipeline(training))
    nlu.save(output)
    console.print(f"Saved to {output}. Use it with CRMBOT_MODEL_PATH={output}")


@nlu_app.command("analyze")
def nlu_analyze(text: Annotated[str, typer.Argument(help="A customer message.")]) -> None:
    """Show what the NLU makes of one message."""
    from nlp import load_or_train

    settings = get_settings()
    result = load_or_train(model_path=settings.model_path).analyze(text)
    console.print(
        f"intent: {result.intent} ({result.confidence:.2f}); best guess {result.top_intent}"
    )
    console.print(f"sentiment: {result.sentiment} ({result.sentiment_score:+.2f})")
    for entity in result.entities:
        console.print(f"entity: {entity.label} {entity.text!r} → {entity.value}", markup=False)
