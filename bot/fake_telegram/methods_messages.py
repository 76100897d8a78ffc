"""Bot API methods that send, edit and delete messages, and answer button presses."""

from __future__ import annotations

import mimetypes
from typing import Any

from .errors import bad_request
from .methods_common import (
    MAX_CAPTION,
    MAX_TEXT,
    api_method,
    bot_message,
    formatted_fields,
    inline_markup,
    known_chat,
    reply_markup,
    target_chat,
)
from .objects import document_object, now, photo_sizes, sticker_object, voice_object
from .params import Params, Upload, require_int
from .records import StoredFile
from .state import FakeState

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
CHAT_ACTIONS = frozenset(
    [
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    ]
)
_MAX_UPLOAD = {"photo": 10 * 1024 * 1024}
_DEFAULT_MIME = {"photo": "image/jpeg", "voice": "audio/ogg", "sticker": "image/webp"}


@api_method("sendMessage")
def send_message(state: FakeState, params: Params) -> dict[str, Any]:
    """Send a text message."""
    chat = target_chat(state, params)
    if not (params.get_str("text") or "").strip():
        raise bad_request("message text is empty")
    fields = formatted_fields(
        params,
        field="text",
        entities_field="entities",
        limit=MAX_TEXT,
        too_long="message is too long",
    )
    if "text" not in fields:
        raise bad_request("message text is empty")
    preview = params.get_json("link_preview_options")
    if isinstance(preview, dict) and preview:
        fields["link_preview_options"] = preview
    return bot_message(state, chat, params, fields)


def _caption(params: Params) -> dict[str, Any]:
    return formatted_fields(
        params,
        field="caption",
        entities_field="caption_entities",
        limit=MAX_CAPTION,
        too_long="message caption is too long",
    )


def _stored_file(state: FakeState, source: Upload | str, kind: str) -> StoredFile:
    """The file a send method refers to: a fresh upload, a URL or a known file_id."""
    if isinstance(source, Upload):
        if not source.data:
            raise bad_request("file must be non-empty")
        if len(source.data) > _MAX_UPLOAD.get(kind, 50 * 1024 * 1024):
            raise bad_request("file is too big")
        mime = source.content_type
        if mime in ("", "application/octet-stream"):
            mime = mimetypes.guess_type(source.filename)[0] or _DEFAULT_MIME.get(kind, mime)
        return state.files.add(kind, content=source.data, filename=source.filename, mime_type=mime)
    if source.startswith(("http://", "https://")):
        name = source.rsplit("/", 1)[-1] or None
        return state.files.add(kind, filename=name, mime_type=_DEFAULT_MIME.get(kind))
    stored = state.files.get(source)
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if stored.kind != kind:
        raise bad_request(f"can't use file of type {stored.kind.title()} as {kind.title()}")
    return stored


def _media_object(state: FakeState, kind: str, stored: StoredFile, params: Params) -> Any:
    if "object" in stored.meta:
        return stored.meta["object"]
    if "sizes" in stored.meta:
        return stored.meta["sizes"]
    if kind == "photo":
        sizes = photo_sizes(state.files, width=1280, height=960, content=stored.content)
        sizes[-1].update(file_id=stored.file_id, file_unique_id=stored.file_unique_id)
        stored.meta["sizes"] = sizes
        return sizes
    if kind == "voice":
        media = voice_object(stored, duration=params.get_int("duration", 1) or 1)
    elif kind == "sticker":
        emoji = params.get_str("emoji")
        media = sticker_object(
            stored, emoji=emoji, set_name=None, is_animated=False, is_video=False
        )
    else:
        media = document_object(stored)
    stored.meta["object"] = media
    return media


def _send_media(state: FakeState, params: Params, kind: str) -> dict[str, Any]:
    chat = target_chat(state, params)
    source = params.get_file(kind)
    if source is None:
        raise bad_request(f"there is no {kind} in the request")
    fields = _caption(params) if kind != "sticker" else {}
    stored = _stored_file(state, source, kind)
    media = _media_object(state, kind, stored, params)
    return bot_message(state, chat, params, {kind: media, **fields})


@api_method("sendPhoto")
def send_photo(state: FakeState, params: Params) -> dict[str, Any]:
    """Send a photo (upload, file_id or URL) with an optional caption."""
    return _send_media(state, params, "photo")


@api_method("sendDocument")
def send_document(state: FakeState, params: Params) -> dict[str, Any]:
    """Send a document with an optional caption."""
    return _send_media(state, params, "document")


@api_method("sendVoice")
def send_voice(state: FakeState, params: Params) -> dict[str, Any]:
    """Send a voice note."""
    return _send_media(state, params, "voice")


@api_method("sendSticker")
def send_sticker(state: FakeState, params: Params) -> dict[str, Any]:
    """Send a sticker."""
    return _send_media(state, params, "sticker")


def _editable(state: FakeState, params: Params) -> dict[str, Any]:
    chat = known_chat(state, params)
    message_id = require_int(params, "message_id", "message identifier is not specified")
    message = state.get_message(chat["id"], message_id)
    if message is None:
        raise bad_request("message to edit not found")
    if (chat["id"], message_id) not in state.bot_sent:
        raise bad_request("message can't be edited")
    return message


def _apply_edit(state: FakeState, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    keys = ("text", "entities", "caption", "caption_entities", "reply_markup")
    if all(old.get(key) == new.get(key) for key in keys):
        raise bad_request(NOT_MODIFIED)
    new["edit_date"] = now()
    state.store_message(new)
    return new


def _replace(message: dict[str, Any], fields: dict[str, Any], *keys: str) -> dict[str, Any]:
    updated = {key: value for key, value in message.items() if key not in keys}
    updated.update(fields)
    return updated


@api_method("editMessageText")
def edit_message_text(state: FakeState, params: Params) -> dict[str, Any] | bool:
    """Edit the text (and inline keyboard) of a message the bot sent."""
    fields = formatted_fields(
        params,
        field="text",
        entities_field="entities",
        limit=MAX_TEXT,
        too_long="MESSAGE_TOO_LONG",
    )
    if "text" not in fields:
        raise bad_request("message text is empty")
    markup = inline_markup(reply_markup(params))
    if params.has("inline_message_id"):
        return True
    message = _editable(state, params)
    if "text" not in message:
        raise bad_request("there is no text in the message to edit")
    if markup:
        fields["reply_markup"] = markup
    new = _replace(message, fields, "text", "entities", "reply_markup")
    return _apply_edit(state, message, new)


@api_method("editMessageCaption")
def edit_message_caption(state: FakeState, params: Params) -> dict[str, Any] | bool:
    """Edit the caption (and inline keyboard) of a media message the bot sent."""
    fields = _caption(params)
    markup = inline_markup(reply_markup(params))
    if params.has("inline_message_id"):
        return True
    message = _editable(state, params)
    if "text" in message:
        raise bad_request("there is no caption in the message to edit")
    if markup:
        fields["reply_markup"] = markup
    new = _replace(message, fields, "caption", "caption_entities", "reply_markup")
    return _apply_edit(state, message, new)


@api_method("editMessageReplyMarkup")
def edit_message_reply_markup(state: FakeState, params: Params) -> dict[str, Any] | bool:
    """Replace or remove the inline keyboard of a message the bot sent."""
    markup = inline_markup(reply_markup(params))
    if params.has("inline_message_id"):
        return True
    message = _editable(state, params)
    new = _replace(message, {"reply_markup": markup} if markup else {}, "reply_markup")
    return _apply_edit(state, message, new)


@api_method("deleteMessage")
def delete_message(state: FakeState, params: Params) -> bool:
    """Delete a message from a chat."""
    chat = known_chat(state, params)
    message_id = require_int(params, "message_id", "message identifier is not specified")
    if not state.delete_message(chat["id"], message_id):
        raise bad_request("message to delete not found")
    state.bot_sent.discard((chat["id"], message_id))
    return True


@api_method("answerCallbackQuery")
def answer_callback_query(state: FakeState, params: Params) -> bool:
    """Answer a callback query once; unknown or already answered ids fail like on Telegram."""
    query_id = params.get_str("callback_query_id") or ""
    query = state.callback_queries.get(query_id)
    if query is None or query["answered"]:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    query["answered"] = True
    query["answer"] = {
        "text": params.get_str("text"),
        "show_alert": params.get_bool("show_alert"),
        "url": params.get_str("url"),
        "cache_time": params.get_int("cache_time", 0),
    }
    return True


@api_method("sendChatAction")
def send_chat_action(state: FakeState, params: Params) -> bool:
    """Show a chat action such as "typing"."""
    target_chat(state, params)
    if params.get_str("action") not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    return True


@api_method("getFile")
def get_file(state: FakeState, params: Params) -> dict[str, Any]:
    """Describe a file for download from ``/file/bot<token>/<file_path>``."""
    stored = state.files.get(params.get_str("file_id") or "")
    if stored is None:
        raise bad_request("invalid file_id")
    return stored.bot_api_file()
