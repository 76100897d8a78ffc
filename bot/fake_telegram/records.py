"""What the fake server remembers besides chats: call records, faults and stored files."""

from __future__ import annotations

import base64
import itertools
import json
import secrets
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any

# An nginx error page, which is what Telegram's front end returns on 502/504.
_NGINX_PAGE = (
    "<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {phrase}</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class CallRecord:
    """One Bot API call the bot made: method, normalized params, outcome and time."""

    method: str
    params: dict[str, Any]
    ok: bool
    result: Any = None
    error_code: int | None = None
    description: str | None = None
    timestamp: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready representation for the control API."""
        return asdict(self)


@dataclass
class Fault:
    """An injected failure for the next ``times`` calls of one method."""

    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    description: str | None = None
    body: str | None = None
    times: int = 1

    def render(self) -> tuple[int, str, str]:
        """(HTTP status, body, media type) of the fault response; status must be set."""
        code = int(self.status or 500)
        if self.body is not None:
            return code, self.body, _media_type(self.body)
        if code in (502, 504) and self.description is None:
            phrase = HTTPStatus(code).phrase
            return code, _NGINX_PAGE.format(code=code, phrase=phrase), "text/html"
        payload: dict[str, Any] = {
            "ok": False,
            "error_code": code,
            "description": self.description or _default_description(code, self.retry_after),
        }
        if code == 429:
            payload["parameters"] = {"retry_after": self.retry_after or 1}
        return code, json.dumps(payload), "application/json"


def _media_type(body: str) -> str:
    try:
        json.loads(body)
    except ValueError:
        return "text/plain"
    return "application/json"


def _default_description(code: int, retry_after: int | None) -> str:
    if code == 429:
        return f"Too Many Requests: retry after {retry_after or 1}"
    if code == 400:
        return "Bad Request"
    if code == 403:
        return "Forbidden: bot was blocked by the user"
    if code == 409:
        return "Conflict: terminated by other getUpdates request"
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


_FILE_PREFIX = {
    "photo": ("AgACAgIAAxkBAA", "photos", "jpg"),
    "document": ("BQACAgIAAxkBAA", "documents", "bin"),
    "voice": ("AwACAgIAAxkBAA", "voice", "oga"),
    "sticker": ("CAACAgIAAxkBAA", "stickers", "webp"),
}


@dataclass
class StoredFile:
    """A file known to the server: uploaded by the bot or sent by a fake user."""

    file_id: str
    file_unique_id: str
    kind: str
    file_path: str
    content: bytes | None = None
    size: int | None = None
    filename: str | None = None
    mime_type: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def bot_api_file(self) -> dict[str, Any]:
        """The ``File`` object getFile returns."""
        data: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_path": self.file_path,
        }
        if self.size is not None:
            data["file_size"] = self.size
        return data


class FileStore:
    """Files by file_id and by download path (not thread-safe; the state's lock guards it)."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._counter = itertools.count(1)

    def clear(self) -> None:
        """Forget all files."""
        self._by_id.clear()
        self._by_path.clear()

    def add(
        self,
        kind: str,
        *,
        content: bytes | None = None,
        size: int | None = None,
        filename: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        """Register a new file and give it Telegram-looking identifiers."""
        number = next(self._counter)
        prefix, folder, extension = _FILE_PREFIX.get(kind, _FILE_PREFIX["document"])
        token = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")
        if filename and "." in filename:
            extension = filename.rsplit(".", 1)[1][:8]
        stored = StoredFile(
            file_id=f"{prefix}{number:05d}{token}",
            file_unique_id=f"AQAD{number:05d}{token[:6]}",
            kind=kind,
            file_path=f"{folder}/file_{number}.{extension}",
            content=content,
            size=len(content) if content is not None else size,
            filename=filename,
            mime_type=mime_type,
        )
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        """Look a file up by file_id."""
        return self._by_id.get(file_id)

    def by_path(self, file_path: str) -> StoredFile | None:
        """Look a file up by the path getFile handed out."""
        return self._by_path.get(file_path)
