"""Bot API methods about the bot itself: identity, updates, webhooks, commands, chats."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from .errors import bad_request, conflict
from .methods_common import Described, api_method, known_chat
from .params import Params
from .state import FakeState, Webhook

WEBHOOK_CONFLICT = (
    "can't use getUpdates method while webhook is active; use deleteWebhook to delete the "
    "webhook first"
)
POLL_CONFLICT = (
    "terminated by other getUpdates request; make sure that only one bot instance is running"
)
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_SCOPES = {
    "default": (),
    "all_private_chats": (),
    "all_group_chats": (),
    "all_chat_administrators": (),
    "chat": ("chat_id",),
    "chat_administrators": ("chat_id",),
    "chat_member": ("chat_id", "user_id"),
}
_GIFT_TYPES = {
    "unlimited_gifts": True,
    "limited_gifts": True,
    "unique_gifts": True,
    "premium_subscription": True,
    "gifts_from_channels": True,
}


@api_method("getMe")
def get_me(state: FakeState, params: Params) -> dict[str, Any]:
    """The bot's own user, with its capability flags."""
    return {
        **state.bot_user(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@api_method("logOut")
def log_out(state: FakeState, params: Params) -> bool:
    """Accepted and ignored."""
    return True


@api_method("close")
def close(state: FakeState, params: Params) -> bool:
    """Accepted and ignored."""
    return True


def poll_updates(state: FakeState, params: Params, *, poll_id: int, first: bool) -> list[Any]:
    """One look at the queue for getUpdates (the waiting happens in the server loop)."""
    with state.cond:
        if state.webhook is not None:
            raise conflict(WEBHOOK_CONFLICT)
        if poll_id != state.poll_generation:
            raise conflict(POLL_CONFLICT)
        if state.closing:
            return []
        if first:
            allowed = params.get_json("allowed_updates", error="can't parse allowed_updates")
            if allowed is not None and not isinstance(allowed, list):
                raise bad_request("can't parse allowed_updates")
            state.queue.set_allowed(allowed)
            state.queue.confirm(params.get_int("offset"))
        limit = min(max(params.get_int("limit", 100) or 100, 1), 100)
        return state.queue.take(limit)


@api_method("getUpdates")
def get_updates(state: FakeState, params: Params) -> list[Any]:
    """getUpdates without waiting (the server wraps ``poll_updates`` in a long poll)."""
    return poll_updates(state, params, poll_id=state.begin_poll(), first=True)


@api_method("setWebhook")
def set_webhook(state: FakeState, params: Params) -> Described:
    """Switch to webhook delivery (an empty url removes the webhook)."""
    url = (params.get_str("url") or "").strip()
    if not url:
        return delete_webhook(state, params)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request("bad webhook: invalid webhook URL specified")
    secret = params.get_str("secret_token")
    if secret is not None and not _SECRET.fullmatch(secret):
        raise bad_request("secret token contains unallowed characters")
    allowed = params.get_json("allowed_updates", error="can't parse allowed_updates")
    max_connections = min(max(params.get_int("max_connections", 40) or 40, 1), 100)
    new = Webhook(url, secret, max_connections, params.get_str("ip_address"))
    old = state.webhook
    same = old is not None and (old.url, old.secret_token, old.max_connections) == (
        url,
        secret,
        max_connections,
    )
    if params.get_bool("drop_pending_updates"):
        state.queue.items.clear()
    state.queue.set_allowed(allowed)
    if not same:
        state.webhook = new
    state.changed()
    return Described(True, "Webhook is already set" if same else "Webhook was set")


@api_method("deleteWebhook")
def delete_webhook(state: FakeState, params: Params) -> Described:
    """Go back to getUpdates, optionally dropping pending updates."""
    had_webhook = state.webhook is not None
    state.webhook = None
    if params.get_bool("drop_pending_updates"):
        state.queue.items.clear()
    state.changed()
    return Described(True, "Webhook was deleted" if had_webhook else "Webhook is already deleted")


@api_method("getWebhookInfo")
def get_webhook_info(state: FakeState, params: Params) -> dict[str, Any]:
    """Webhook status with an accurate ``pending_update_count``."""
    pending = len(state.queue.items)
    if state.webhook is None:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": pending}
    return state.webhook.info(pending, state.queue.allowed_list)


def _scope_key(params: Params) -> tuple[str, str]:
    scope = params.get_json("scope", {"type": "default"}, error="can't parse BotCommandScope")
    if not isinstance(scope, dict) or scope.get("type") not in _SCOPES:
        raise bad_request("unsupported bot command scope type")
    for needed in _SCOPES[scope["type"]]:
        if needed not in scope:
            raise bad_request(f"{needed} is empty")
    language = params.get_str("language_code") or ""
    if language and not re.fullmatch(r"[a-z]{2}", language):
        raise bad_request("invalid language code specified")
    return json.dumps(scope, sort_keys=True), language


def _checked_command(command: Any) -> dict[str, str]:
    if not isinstance(command, dict):
        raise bad_request("can't parse BotCommand")
    name, description = command.get("command"), command.get("description")
    if not isinstance(name, str) or not _COMMAND.fullmatch(name):
        raise bad_request("BOT_COMMAND_INVALID")
    if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
        raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    return {"command": name, "description": description}


@api_method("setMyCommands")
def set_my_commands(state: FakeState, params: Params) -> bool:
    """Store the command list for a scope and language."""
    commands = params.get_json("commands", error="can't parse commands JSON object")
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad_request("too many commands")
    checked = [_checked_command(command) for command in commands]
    key = _scope_key(params)
    if checked:
        state.commands[key] = checked
    else:
        state.commands.pop(key, None)
    return True


@api_method("getMyCommands")
def get_my_commands(state: FakeState, params: Params) -> list[dict[str, str]]:
    """The command list stored for a scope and language (empty if none)."""
    return list(state.commands.get(_scope_key(params), []))


@api_method("deleteMyCommands")
def delete_my_commands(state: FakeState, params: Params) -> bool:
    """Forget the command list of a scope and language."""
    state.commands.pop(_scope_key(params), None)
    return True


@api_method("getChat")
def get_chat(state: FakeState, params: Params) -> dict[str, Any]:
    """``ChatFullInfo`` for a chat the server knows."""
    chat = known_chat(state, params)
    return {
        **chat,
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": dict(_GIFT_TYPES),
    }


def _setting(name: str, result_key: str) -> None:
    """Register ``setMy<Name>`` / ``getMy<Name>`` storing one text per language."""

    def setter(state: FakeState, params: Params) -> bool:
        language = params.get_str("language_code") or ""
        state.settings[(result_key, language)] = params.get_str(result_key) or ""
        return True

    def getter(state: FakeState, params: Params) -> dict[str, str]:
        language = params.get_str("language_code") or ""
        stored = state.settings.get((result_key, language), state.settings.get((result_key, "")))
        return {result_key: stored or ""}

    api_method(f"setMy{name}")(setter)
    api_method(f"getMy{name}")(getter)


_setting("Description", "description")
_setting("ShortDescription", "short_description")
_setting("Name", "name")


@api_method("setChatMenuButton")
def set_chat_menu_button(state: FakeState, params: Params) -> bool:
    """Store the menu button (per chat, or the default one)."""
    button = params.get_json("menu_button", {"type": "default"}, error="can't parse MenuButton")
    state.settings[("menu_button", params.get_str("chat_id") or "")] = button
    return True


@api_method("getChatMenuButton")
def get_chat_menu_button(state: FakeState, params: Params) -> dict[str, Any]:
    """The stored menu button, else the default one."""
    key = params.get_str("chat_id") or ""
    return state.settings.get(("menu_button", key), {"type": "default"})
