"""The answer table: what the bot says or does for each intent, read from YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_ANSWERS = Path(__file__).resolve().parent.parent / "data" / "answers.yml"


class AnswerTableError(ValueError):
    """The answers file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Action:
    """A templated text, a flow, or a flow with a text it appends."""

    intent: str
    text: str | None = None
    flow: str | None = None


@dataclass(frozen=True)
class AnswerTable:
    actions: dict[str, Action]
    media: dict[str, str]
    order_status: dict[str, str]
    source: Path = field(default=DEFAULT_ANSWERS)

    def action(self, intent: str) -> Action:
        return self.actions.get(intent) or self.actions["out_of_scope"]

    def media_text(self, kind: str) -> str:
        return self.media.get(kind) or self.media["other"]


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
        actions[str(intent)] = Action(str(intent), text=body.get("text"), flow=body.get("flow"))
    if "out_of_scope" not in actions:
        raise AnswerTableError(f"{path}: intents.out_of_scope (the fallback) is required")
    media = {str(k): str(v) for k, v in (raw.get("media") or {}).items()}
    media.setdefault("other", actions["out_of_scope"].text or "")
    order_status = {str(k): str(v) for k, v in (raw.get("order_status") or {}).items()}
    for key in ("found", "latest", "not_found", "none"):
        if key not in order_status:
            raise AnswerTableError(f"{path}: order_status.{key} is required")
    return AnswerTable(actions=actions, media=media, order_status=order_status, source=path)


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, **values: Any) -> str:
    """Fill ``{name}``-style fields; unknown fields become empty instead of failing."""
    try:
        return template.format_map(_Blank(values))
    except (ValueError, IndexError, AttributeError, KeyError):
        return template  # a malformed template is shown as written rather than failing
