"""Method registry and helpers shared by the Bot API method implementations.

Handlers are plain functions ``(state, params) -> result`` run under the state's lock; they raise
``ApiError`` for Bot API errors. Method names are case-insensitive, as on Telegram.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import bad_request, forbidden
from .formatting import format_text
from .objects import implicit_chat, now
from .params import Params
from .state import FakeState

Handler = Callable[[FakeState, Params], Any]
_HANDLERS: dict[str, tuple[str, Handler]] = {}
_BUTTON_ACTIONS = frozenset(
    {
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)
MARKUP_ERROR = "can't parse reply keyboard markup JSON object"
MAX_TEXT = 4096
MAX_CAPTION = 1024


@dataclass(frozen=True)
class Described:
    """A result that comes with a ``description`` next to it (e.g. "Webhook was set")."""

    result: Any
    description: str


def api_method(name: str) -> Callable[[Handler], Handler]:
    """Register a handler for the Bot API method ``name``."""

    def register(handler: Handler) -> Handler:
        _HANDLERS[name.lower()] = (name, handler)
        return handler

    return register


def find_method(name: str) -> tuple[str, Handler] | None:
    """(canonical name, handler) for a method name in any letter case."""
    return _HANDLERS.get(name.lower())


def method_names() -> list[str]:
    """All implemented method names."""
    return sorted(canonical for canonical, _ in _HANDLERS.values())


def target_chat(state: FakeState, params: Params) -> dict[str, Any]:
    """The chat a send method targets; unknown chats are created unless ``strict_chats``."""
    chat_id = params.chat_id()
    chat = state.find_chat(chat_id)
    if chat is None:
        if state.strict_chats or isinstance(chat_id, str):
            raise bad_request("chat not found")
        chat = implicit_chat(chat_id, state.users.get(chat_id))
        state.remember_chat(chat)
    if chat["id"] in state.blocked:
        if chat["type"] == "private":
            raise forbidden("bot was blocked by the user")
        raise forbidden("bot was kicked from the group chat")
    return chat


def known_chat(state: FakeState, params: Params) -> dict[str, Any]:
    """A chat the server has seen, else ``Bad Request: chat not found``."""
    chat = state.find_chat(params.chat_id())
    if chat is None:
        raise bad_request("chat not found")
    return chat


def reply_markup(params: Params) -> dict[str, Any] | None:
    """The validated ``reply_markup`` parameter, if any."""
    markup = params.get_json("reply_markup", error=MARKUP_ERROR)
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request(MARKUP_ERROR)
    if "inline_keyboard" in markup:
        _check_inline_keyboard(markup["inline_keyboard"])
    elif "keyboard" in markup:
        _check_rows(markup["keyboard"], "keyboard", "ReplyKeyboardMarkup")
    elif not (markup.get("remove_keyboard") or markup.get("force_reply")):
        raise bad_request(MARKUP_ERROR)
    return markup


def _check_rows(rows: Any, field: str, owner: str) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(f'field "{field}" of the {owner} must be an Array of Arrays')


def _check_inline_keyboard(rows: Any) -> None:
    _check_rows(rows, "inline_keyboard", "InlineKeyboardMarkup")
    for button in (button for row in rows for button in row):
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise bad_request('can\'t find field "text"')
        if not _BUTTON_ACTIONS & button.keys():
            raise bad_request("text buttons are unallowed in the inline keyboard")
        if "callback_data" in button:
            size = len(str(button["callback_data"]).encode())
            if not 1 <= size <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
        if "url" in button and not str(button["url"]).strip():
            raise bad_request("BUTTON_URL_INVALID")


def inline_markup(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of a markup that Telegram echoes in the Message: inline keyboards only."""
    return markup if markup and "inline_keyboard" in markup else None


def reply_target(state: FakeState, chat_id: int, params: Params) -> dict[str, Any] | None:
    """The message being replied to (``reply_parameters`` or ``reply_to_message_id``)."""
    wanted = params.get_json("reply_parameters", error="can't parse reply parameters JSON object")
    if wanted is None and params.has("reply_to_message_id"):
        wanted = {
            "message_id": params.get_int("reply_to_message_id"),
            "allow_sending_without_reply": params.get_bool("allow_sending_without_reply"),
        }
    if not wanted:
        return None
    if not isinstance(wanted, dict) or "message_id" not in wanted:
        raise bad_request("can't parse reply parameters JSON object")
    target = state.get_message(chat_id, int(wanted["message_id"]))
    if target is None:
        if wanted.get("allow_sending_without_reply"):
            return None
        raise bad_request("message to be replied not found")
    target.pop("reply_to_message", None)
    return target


def formatted_fields(
    params: Params, *, field: str, entities_field: str, limit: int, too_long: str
) -> dict[str, Any]:
    """``text``/``caption`` and its entities after parse_mode handling and limits."""
    raw = params.get_str(field) or ""
    entities = params.get_json(entities_field, error="can't parse entities JSON object")
    if entities is not None and not (
        isinstance(entities, list) and all(_is_entity(entity) for entity in entities)
    ):
        raise bad_request("can't parse entities JSON object")
    formatted = format_text(raw, parse_mode=params.get_str("parse_mode"), entities=entities)
    if len(formatted.text) > limit:
        raise bad_request(too_long)
    fields: dict[str, Any] = {}
    if formatted.text:
        fields[field] = formatted.text
    if formatted.entities:
        fields[entities_field] = formatted.entities
    return fields


def _is_entity(entity: Any) -> bool:
    if not isinstance(entity, dict) or not isinstance(entity.get("type"), str):
        return False
    return all(isinstance(entity.get(key), int) for key in ("offset", "length"))


def bot_message(
    state: FakeState, chat: dict[str, Any], params: Params, fields: dict[str, Any]
) -> dict[str, Any]:
    """Create, store and return a message the bot sends to ``chat``."""
    reply = reply_target(state, chat["id"], params)
    markup = reply_markup(params)
    message: dict[str, Any] = {"message_id": state.new_message_id(chat["id"])}
    if chat["type"] == "channel":
        message["sender_chat"] = chat
    else:
        message["from"] = state.bot_user()
    message.update(date=now(), chat=chat)
    thread_id = params.get_int("message_thread_id")
    if thread_id:
        message["message_thread_id"] = thread_id
    if reply:
        message["reply_to_message"] = reply
    message.update(fields)
    if inline_markup(markup):
        message["reply_markup"] = markup
    if params.get_bool("protect_content"):
        message["has_protected_content"] = True
    _remember_keyboard(state, chat["id"], markup)
    state.store_message(message)
    state.bot_sent.add((chat["id"], message["message_id"]))
    return message


def _remember_keyboard(state: FakeState, chat_id: int, markup: dict[str, Any] | None) -> None:
    if markup and "keyboard" in markup:
        state.reply_keyboards[chat_id] = markup
    elif markup and markup.get("remove_keyboard"):
        state.reply_keyboards.pop(chat_id, None)
