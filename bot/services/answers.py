"""The answer table: what the bot says or does for each intent, read from YAML."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

DEFAULT_ANSWERS = Path(__file__).resolve().parent.parent / "data" / "answers.yml"


# The texts the flows say (answers.yml, section ``texts``).
REQUIRED_TEXTS = (
    "ask_order_number",
    "ask_order_number_again",
    "which_order",
    "confirm_cancel",
    "cancelled",
    "cannot_cancel",
    "confirm_change",
    "cannot_change",
    "ask_change_details",
    "change_handed_over",
    "payment_handed_over",
    "request_handed_over",
    "payment_charged",
    "kept",
    "clarify",
    "clarify_none",
    "acknowledged",
    "take_your_time",
    "asked_again",
    "order_number_give_up",
    "no_order_number",
    "review_invite",
    "talk_to_person",
    "csat_question",
    "csat_reminder",
    "csat_thanks",
    "csat_rated",
    "csat_comment_thanks",
    "nps_question",
    "nps_thanks",
    "survey_answered",
    "handoff_auto",
    "still_waiting",
    "not_understood_upset",
    "other_language",
    "staff_joined",
    "resolved",
)


class AnswerTableError(ValueError):
    """The answers file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Action:
    """A templated text, a flow, or a flow with a text it appends."""

    intent: str
    text: str | None = None
    flow: str | None = None
    label: str | None = None  # how a button offering this intent reads

    @property
    def button_label(self) -> str:
        return self.label or self.intent.replace("_", " ").capitalize()


@dataclass(frozen=True)
class AnswerTable:
    actions: dict[str, Action]
    media: dict[str, str]
    order_status: dict[str, str]
    texts: dict[str, str] = field(default_factory=dict)
    source: Path = field(default=DEFAULT_ANSWERS)

    def action(self, intent: str) -> Action:
        return self.actions.get(intent) or self.actions["out_of_scope"]

    def media_text(self, kind: str) -> str:
        return self.media.get(kind) or self.media["other"]

    def say(self, key: str, **values: Any) -> str:
        """A text of the ``texts`` section, filled in (keys are checked at load)."""
        return render(self.texts[key], **values)


def load_answers(path: Path = DEFAULT_ANSWERS) -> AnswerTable:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnswerTableError(f"{path}: answers file not found") from None
    except yaml.YAMLError as exc:
        raise AnswerTableError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("intents"), dict):
        raise AnswerTableError(f"{path}: expected a mapping with an 'intents' section")
    actions: dict[str, Action] = {}
    for intent, body in raw["intents"].items():
        if not isinstance(body, dict) or not (body.get("text") or body.get("flow")):
            raise AnswerTableError(f"{path}: intents.{intent} needs a 'text' or a 'flow'")
        actions[str(intent)] = Action(
            str(intent), text=body.get("text"), flow=body.get("flow"), label=body.get("label")
        )
    if "out_of_scope" not in actions:
        raise AnswerTableError(f"{path}: intents.out_of_scope (the fallback) is required")
    media = {str(k): str(v) for k, v in (raw.get("media") or {}).items()}
    media.setdefault("other", actions["out_of_scope"].text or "")
    order_status = {str(k): str(v) for k, v in (raw.get("order_status") or {}).items()}
    for key in ("found", "latest", "not_found", "none"):
        if key not in order_status:
            raise AnswerTableError(f"{path}: order_status.{key} is required")
    texts = {str(k): str(v) for k, v in (raw.get("texts") or {}).items()}
    missing = [key for key in REQUIRED_TEXTS if key not in texts]
    if missing and path.resolve() == DEFAULT_ANSWERS:
        raise AnswerTableError(f"{path}: texts.{missing[0]} is required")
    if missing:  # a business's file from an older version: newer texts as they come
        defaults = load_answers().texts
        log.info("%s has no texts.%s; using the built-in text", path, ", texts.".join(missing))
        texts.update({key: defaults[key] for key in missing})
    return AnswerTable(
        actions=actions, media=media, order_status=order_status, texts=texts, source=path
    )


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, **values: Any) -> str:
    """Fill ``{name}``-style fields; unknown fields become empty instead of failing."""
    try:
        return template.format_map(_Blank(values))
    except (ValueError, IndexError, AttributeError, KeyError):
        return template  # a malformed template is shown as written rather than failing
