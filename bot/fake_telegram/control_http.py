"""The control API over HTTP (``/_control/...``): JSON in, ``{"ok": ..., "result": ...}`` out.

Each route maps onto a ``FakeTelegram`` method, so a test in another process (or an operator with
curl) can do what Python tests do in-process.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from .controller import FakeTelegram

_INJECTORS = {
    "message": "inject_message",
    "command": "inject_command",
    "group_message": "inject_group_message",
    "channel_post": "inject_channel_post",
    "edited_message": "inject_edited_message",
    "callback_query": "inject_callback_query",
    "click_button": "click_button",
    "sticker": "inject_sticker",
    "photo": "inject_photo",
    "voice": "inject_voice",
    "document": "inject_document",
    "location": "inject_location",
    "contact": "inject_contact",
}


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def _error(status: int, description: str) -> JSONResponse:
    return JSONResponse({"ok": False, "description": description}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body:
        return {}
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a JSON object is expected")
    return data


def _chat_id(request: Request) -> int | None:
    value = request.query_params.get("chat_id")
    return int(value) if value not in (None, "") else None


class ControlHttp:
    """Request handlers translating HTTP to ``FakeTelegram`` calls."""

    def __init__(self, controller: FakeTelegram) -> None:
        self.controller = controller

    async def _call(self, request: Request, action: Callable[[dict[str, Any]], Any]) -> Any:
        try:
            return _ok(action(await _json_body(request)))
        except (TypeError, ValueError, LookupError) as exc:
            return _error(400, str(exc))

    async def inject(self, request: Request) -> JSONResponse:
        """POST /_control/inject/{kind} with the Python method's keyword arguments."""
        name = _INJECTORS.get(request.path_params["kind"])
        if name is None:
            return _error(404, f"unknown kind; use one of {sorted(_INJECTORS)}")
        method = getattr(self.controller, name)

        def action(kwargs: dict[str, Any]) -> Any:
            if "content_base64" in kwargs:
                kwargs["content"] = base64.b64decode(kwargs.pop("content_base64"))
            return method(**kwargs)

        return await self._call(request, action)

    async def updates(self, request: Request) -> JSONResponse:
        """GET: pending updates; POST: queue the body as a raw update."""
        if request.method == "GET":
            return _ok(self.controller.pending_updates())
        return await self._call(request, self.controller.inject_update)

    async def calls(self, request: Request) -> JSONResponse:
        """GET /_control/calls[?method=sendMessage]: recorded Bot API calls."""
        records = self.controller.calls(request.query_params.get("method"))
        return _ok([record.as_dict() for record in records])

    async def requests(self, request: Request) -> JSONResponse:
        """GET /_control/requests: requested method names in order."""
        return _ok(self.controller.requests())

    async def sent(self, request: Request) -> JSONResponse:
        """GET /_control/sent[?chat_id=N]: messages the bot sent."""
        try:
            return _ok(self.controller.sent_messages(_chat_id(request)))
        except ValueError as exc:
            return _error(400, str(exc))

    async def wait(self, request: Request) -> JSONResponse:
        """POST /_control/wait {"count", "chat_id", "timeout"}: 408 if not reached in time."""
        try:
            body = await _json_body(request)
            count = int(body.get("count", 1))
            chat_id = body.get("chat_id")
            timeout = float(body.get("timeout", 5.0))
        except (TypeError, ValueError) as exc:
            return _error(400, str(exc))
        try:
            messages = await asyncio.to_thread(
                self.controller.wait_for, count, chat_id=chat_id, timeout=timeout
            )
        except TimeoutError as exc:
            return _error(408, str(exc))
        return _ok(messages)

    async def faults(self, request: Request) -> JSONResponse:
        """POST: add a fault ({"method", "status", ...}); DELETE[?method=]: clear faults."""
        if request.method == "DELETE":
            self.controller.clear_faults(request.query_params.get("method"))
            return _ok(True)

        def action(kwargs: dict[str, Any]) -> bool:
            self.controller.inject_fault(kwargs.pop("method"), **kwargs)
            return True

        return await self._call(request, action)

    async def commands(self, request: Request) -> JSONResponse:
        """GET /_control/commands[?scope=<json>&language_code=xx]."""
        scope = request.query_params.get("scope")
        try:
            parsed = json.loads(scope) if scope else None
        except ValueError as exc:
            return _error(400, str(exc))
        language = request.query_params.get("language_code", "")
        return _ok(self.controller.commands(scope=parsed, language_code=language))

    async def webhook(self, request: Request) -> JSONResponse:
        """GET /_control/webhook: what getWebhookInfo would say."""
        return _ok(self.controller.webhook_info())

    async def history(self, request: Request) -> JSONResponse:
        """GET /_control/chats/{chat_id}/messages: the chat's current messages."""
        try:
            chat_id = int(request.path_params["chat_id"])
        except ValueError as exc:
            return _error(400, str(exc))
        return _ok(self.controller.chat_history(chat_id))

    async def blocked(self, request: Request) -> JSONResponse:
        """PUT/DELETE /_control/blocked/{chat_id}: the user blocks/unblocks the bot."""
        try:
            chat_id = int(request.path_params["chat_id"])
        except ValueError as exc:
            return _error(400, str(exc))
        self.controller.set_blocked(chat_id, request.method == "PUT")
        return _ok(True)

    async def reset(self, request: Request) -> JSONResponse:
        """POST /_control/reset: clear all state."""
        self.controller.reset()
        return _ok(True)


def control_routes(controller: FakeTelegram) -> list[Route]:
    """The ``/_control`` routes bound to ``controller``."""
    api = ControlHttp(controller)
    prefix = "/_control"
    return [
        Route(f"{prefix}/inject/{{kind}}", api.inject, methods=["POST"]),
        Route(f"{prefix}/updates", api.updates, methods=["GET", "POST"]),
        Route(f"{prefix}/calls", api.calls, methods=["GET"]),
        Route(f"{prefix}/requests", api.requests, methods=["GET"]),
        Route(f"{prefix}/sent", api.sent, methods=["GET"]),
        Route(f"{prefix}/wait", api.wait, methods=["POST"]),
        Route(f"{prefix}/faults", api.faults, methods=["POST", "DELETE"]),
        Route(f"{prefix}/commands", api.commands, methods=["GET"]),
        Route(f"{prefix}/webhook", api.webhook, methods=["GET"]),
        Route(f"{prefix}/chats/{{chat_id}}/messages", api.history, methods=["GET"]),
        Route(f"{prefix}/blocked/{{chat_id}}", api.blocked, methods=["PUT", "DELETE"]),
        Route(f"{prefix}/reset", api.reset, methods=["POST"]),
    ]
