"""Reading Bot API parameters from query strings, JSON, url-encoded and multipart bodies.

Telegram accepts all four encodings; python-telegram-bot sends url-encoded forms (multipart when
uploading), with every non-string value JSON-encoded. ``Params`` gives typed access that works for
either shape and raises the Bot API's 400 errors on malformed values.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from .errors import ApiError, bad_request

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


@dataclass(frozen=True)
class Upload:
    """A file uploaded as a multipart part."""

    filename: str
    content_type: str
    data: bytes

    def describe(self) -> dict[str, Any]:
        """Summary used in call records instead of the raw bytes."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": len(self.data),
        }


def parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    """Decode a request body of any encoding Telegram accepts into a flat dict."""
    if not body:
        return {}
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json":
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise bad_request("can't parse JSON object") from exc
        if not isinstance(data, dict):
            raise bad_request("JSON object expected")
        return data
    if kind == "multipart/form-data":
        return _parse_multipart(content_type, body)
    text = body.decode("utf-8", "replace")
    return dict(parse_qsl(text, keep_blank_values=True))


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Parse multipart/form-data with the standard library's MIME parser."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise bad_request("can't parse multipart/form-data body")
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            fields[str(name)] = data.decode("utf-8", "replace")
        else:
            fields[str(name)] = Upload(
                str(filename), part.get_content_type() or "application/octet-stream", data
            )
    return fields


class Params:
    """Typed access to one request's parameters."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def has(self, name: str) -> bool:
        """Whether ``name`` was sent with a non-empty value."""
        return self.raw.get(name) not in (None, "")

    def get_str(self, name: str, default: str | None = None) -> str | None:
        """A string parameter (numbers are converted back to text)."""
        value = self.raw.get(name)
        if value is None or isinstance(value, Upload):
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else str(value)

    def get_int(self, name: str, default: int | None = None, *, error: str = "") -> int | None:
        """An integer parameter; a malformed value is a 400 error."""
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise bad_request(error or f'field "{name}" must be of type Integer') from None

    def get_float(self, name: str, default: float | None = None) -> float | None:
        """A float parameter; a malformed value is a 400 error."""
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f'field "{name}" must be of type Float') from None

    def get_bool(self, name: str, default: bool = False) -> bool:
        """A boolean parameter, from JSON ``true`` or the strings ``"true"``/``"1"``."""
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, bool | int):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise bad_request(f'field "{name}" must be of type Boolean')

    def get_json(self, name: str, default: Any = None, *, error: str = "") -> Any:
        """A JSON-serialized parameter (object or array), decoding strings when needed."""
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(error or f"can't parse {name} JSON object") from None

    def get_file(self, name: str) -> Upload | str | None:
        """A file parameter: an upload, an ``attach://`` reference, a file_id or a URL."""
        value = self.raw.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            value = self.raw.get(value[len("attach://") :])
        if value is None or value == "":
            return None
        if isinstance(value, Upload):
            return value
        return str(value)

    def chat_id(self, name: str = "chat_id") -> int | str:
        """The target chat: an integer id or ``@username``; required."""
        value = self.raw.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if text.startswith("@") and len(text) > 1:
            return text
        try:
            return int(text)
        except ValueError:
            raise bad_request("chat not found") from None

    def normalized(self) -> dict[str, Any]:
        """Parameters with JSON strings decoded, numbers parsed and uploads summarized."""
        return {name: _normalize_value(name, value) for name, value in self.raw.items()}


_JSON_FIELDS = frozenset(
    [
        "reply_markup",
        "reply_parameters",
        "entities",
        "caption_entities",
        "link_preview_options",
        "allowed_updates",
        "commands",
        "scope",
        "media",
        "menu_button",
    ]
)
_INT_FIELDS = frozenset(
    [
        "chat_id",
        "message_id",
        "message_thread_id",
        "reply_to_message_id",
        "offset",
        "limit",
        "timeout",
        "max_connections",
        "cache_time",
        "user_id",
        "from_chat_id",
        "duration",
        "width",
        "height",
    ]
)
_BOOL_FIELDS = frozenset(
    [
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "has_spoiler",
    ]
)


def _normalize_value(name: str, value: Any) -> Any:
    if isinstance(value, Upload):
        return value.describe()
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if name in _JSON_FIELDS:
            return json.loads(text)
        if name in _INT_FIELDS:
            return int(text)
    except ValueError:
        return value
    if name in _BOOL_FIELDS and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    return value


def require_int(params: Params, name: str, error: str) -> int:
    """An integer parameter that must be present, else ``Bad Request: <error>``."""
    value = params.get_int(name)
    if value is None:
        raise bad_request(error)
    return value


__all__ = ["ApiError", "Params", "Upload", "parse_body", "require_int"]
