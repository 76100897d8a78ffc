"""The answer table covers every intent the default model knows, with real answers."""

from __future__ import annotations

import pytest
import yaml

from bot.services.answers import DEFAULT_ANSWERS, AnswerTableError, load_answers, render
from bot.services.flows import FLOWS
from nlp.training import DATA_DIR

INTENTS = sorted(yaml.safe_load((DATA_DIR / "intents.yml").read_text())["intents"])
ANSWERS = load_answers()


@pytest.mark.parametrize("intent", [*INTENTS, "out_of_scope"])
def test_every_intent_has_an_answer(intent):
    action = ANSWERS.actions.get(intent)
    assert action is not None, f"{intent} has no entry in bot/data/answers.yml"
    assert action.text or action.flow in FLOWS
    if action.flow:
        assert action.flow in FLOWS, f"{intent} names unknown flow {action.flow}"
    assert "not implemented" not in (action.text or "").lower()


def test_default_domain_has_the_34_intents():
    assert len(INTENTS) == 34
    assert {"track_order", "greet", "privacy_delete", "opt_out_marketing"} <= set(INTENTS)


def test_malformed_answers_file_is_reported_with_its_path(tmp_path):
    path = tmp_path / "answers.yml"
    path.write_text("intents:\n  greet: {}\n")
    with pytest.raises(AnswerTableError, match=r"intents\.greet needs a 'text' or a 'flow'"):
        load_answers(path)
    path.write_text("intents: [")
    with pytest.raises(AnswerTableError, match="not valid YAML"):
        load_answers(path)


def test_a_customised_file_from_an_older_version_gets_the_newer_texts(tmp_path):
    """A business's answers.yml written before a text existed still loads: the text it
    lacks comes from the built-in file; its own texts stay."""
    raw = yaml.safe_load(DEFAULT_ANSWERS.read_text(encoding="utf-8"))
    raw["texts"]["kept"] = "Fine, nothing changed."
    del raw["texts"]["still_waiting"]
    path = tmp_path / "answers.yml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    table = load_answers(path)
    assert table.say("kept") == "Fine, nothing changed."
    assert table.say("still_waiting") == ANSWERS.say("still_waiting")


def test_render_tolerates_unknown_and_malformed_fields():
    assert render("Hi {name}, {unknown}!", name="Ada") == "Hi Ada, !"
    assert render("broken {0} {", name="Ada") == "broken {0} {"
