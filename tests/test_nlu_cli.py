"""`crmbot nlu train / eval / predict` as an operator runs them, and their errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.main import app
from bot.fake_telegram.bot_process import ROOT

INTENTS_CSV = """text,intent
where is my parcel,track_order
has my package shipped yet,track_order
track my order please,track_order
what's the status of my delivery,track_order
my box still hasn't come,track_order
i want my money back,get_refund
refund me please,get_refund
can i get a refund for these shoes,get_refund
give me my money back now,get_refund
please reimburse me,get_refund
what's the weather like,out_of_scope
tell me a joke,out_of_scope
who won the football game,out_of_scope
"""
SENTIMENT_CSV = """text,sentiment
you people are useless,negative
what a horrible experience,negative
i'm fed up with waiting,negative
this was a disaster,negative
how do i change my address,neutral
i have a question about my bill,neutral
what time do you open,neutral
is this in stock,neutral
brilliant service thanks,positive
so happy with my order,positive
you guys are the best,positive
works perfectly love it,positive
"""


def crmbot(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CRMBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "nlu", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=timeout,
        env={**inherited, "COLUMNS": "200", **env},
    )


@pytest.fixture
def env(tmp_path: Path, model_dir: Path) -> dict[str, str]:
    """The session's default model is in the cache, so no command trains it again."""
    cache = tmp_path / "cache"
    (cache / "crmbot" / "models").mkdir(parents=True)
    (cache / "crmbot" / "models" / model_dir.name).symlink_to(model_dir)
    return {"XDG_CACHE_HOME": str(cache), "CRMBOT_DATA_DIR": str(tmp_path / "data")}


@pytest.mark.slow
def test_train_eval_predict_on_a_business_csv(tmp_path: Path, env: dict[str, str]):
    data, out = tmp_path / "intents.csv", tmp_path / "model"
    data.write_text(INTENTS_CSV, encoding="utf-8")
    trained = crmbot("train", "--data", str(data), "--out", str(out), env=env)
    assert trained.returncode == 0, trained.stderr
    assert "calibration fold" in trained.stderr  # progress is shown
    assert (out / "meta.json").is_file() and "Saved to" in trained.stdout

    evaluated = crmbot("eval", "--model", str(out), "--data", str(data), "--json", env=env)
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["n"] == 13 and report["accuracy"] >= 0.9 and report["macro_f1"] >= 0.9
    assert report["engine"] == "light"

    table = crmbot("eval", "--model", str(out), "--data", str(data), env=env)
    assert table.returncode == 0, table.stderr
    assert "get_refund" in table.stdout and "macro_f1=" in table.stdout

    predicted = crmbot(
        "predict", "--model", str(out), "--json", "my parcel #10234 is late, awful!", env=env
    )
    assert predicted.returncode == 0, predicted.stderr
    analysis = json.loads(predicted.stdout)
    assert analysis["intent"] == "track_order"
    assert analysis["sentiment"] == "negative"  # the default sentiment model came along
    assert {"label": "ORDER_ID", "value": "10234"}.items() <= analysis["entities"][0].items()


runner = CliRunner()


def invoke(*args: str, env: dict[str, str]):
    """The same commands in-process (faster than a subprocess)."""
    return runner.invoke(app, ["nlu", *args], env={**env, "CRMBOT_MODEL_PATH": None})


def test_sentiment_csv_keeps_the_default_intents(tmp_path: Path, env: dict[str, str]):
    data, out = tmp_path / "sentiment.csv", tmp_path / "model"
    data.write_text(SENTIMENT_CSV, encoding="utf-8")
    trained = invoke(
        "train", "--data", str(data), "--task", "sentiment", "--out", str(out), env=env
    )
    assert trained.exit_code == 0, trained.output
    predicted = invoke("predict", "--model", str(out), "--json", "where is my order?", env=env)
    assert json.loads(predicted.stdout)["intent"] == "track_order"
    evaluated = invoke(
        "eval", "--model", str(out), "--data", str(data), "--task", "sentiment", "--json", env=env
    )
    assert json.loads(evaluated.stdout)["accuracy"] >= 0.9
    shown = invoke("predict", "--model", str(out), "you are the best", env=env)
    assert "sentiment: positive" in shown.stdout and "intent:" in shown.stdout


def test_eval_without_model_uses_the_default_model(tmp_path: Path, env: dict[str, str]):
    data = tmp_path / "eval.csv"
    data.write_text(
        "text,intent\nhello there!,greet\nwhere is my order?,track_order\n"
        "I want to talk to a real person,contact_human_agent\n"
        "what's the capital of mongolia,out_of_scope\n",
        encoding="utf-8",
    )
    evaluated = invoke("eval", "--data", str(data), "--json", env=env)
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("words,intent\nhi,greet\nbye,goodbye\n", [], "missing column text"),
        ("text,intent\nhi,greet\nbye,\n", [], "empty intent label on line 3"),
        ("text,intent\nhi,greet\nhello,greet\n", [], "only one intent label"),
        ("text,intent\nhi,greet\nbye,goodbye\n", ["--task", "topic"], "unknown task 'topic'"),
        ("text,intent\nhi,greet\nbye,goodbye\n", ["--engine", "gpu"], "unknown engine 'gpu'"),
        (
            "text,intent\nhi,greet\nbye,goodbye\n",
            ["--task", "sentiment"],
            "missing column sentiment",
        ),
    ],
)
def test_bad_training_file_exits_with_a_clear_error(tmp_path, content, args, message):
    data = tmp_path / "data.csv"
    data.write_text(content, encoding="utf-8")
    result = runner.invoke(
        app, ["nlu", "train", "--data", str(data), "--out", str(tmp_path / "m"), *args]
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "m").exists()


def test_bad_eval_file_and_missing_model_exit_with_a_clear_error(tmp_path):
    def error(*args: str) -> str:
        result = runner.invoke(app, ["nlu", "eval", *args])
        assert result.exit_code == 2
        return " ".join(result.output.split())

    assert "file not found" in error("--data", str(tmp_path / "none.csv"))
    data = tmp_path / "data.csv"
    data.write_text("text,intent\nhi,\n", encoding="utf-8")
    assert "empty intent label on line 2" in error("--data", str(data))
    data.write_text("text,intent\nhi,greet\n", encoding="utf-8")
    assert "no trained pipeline here" in error("--data", str(data), "--model", str(tmp_path))
