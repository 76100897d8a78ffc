"""The Starlette application: ``/bot<token>/<method>``, file downloads and the control API."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import methods_bot, methods_messages  # noqa: F401  (registers the Bot API methods)
from .control_http import control_routes
from .errors import ApiError
from .methods_common import Described, Handler, find_method
from .params import Params, parse_body
from .records import CallRecord, Fault
from .state import FakeState
from .webhook import Notifier, WebhookDeliverer

if TYPE_CHECKING:
    from .controller import FakeTelegram

log = logging.getLogger(__name__)
TOKEN_PATTERN = re.compile(r"\d+:[A-Za-z0-9_-]+")
_NOT_FOUND = ApiError(404, "Not Found")
_UNAUTHORIZED = ApiError(401, "Unauthorized")
MAX_POLL_TIMEOUT = 50.0


def error_response(error: ApiError) -> JSONResponse:
    """The HTTP response for a Bot API error."""
    return JSONResponse(error.payload(), status_code=error.code)


class BotApi:
    """Serves Bot API calls against a ``FakeState``: auth, faults, recording, long polling."""

    def __init__(self, state: FakeState) -> None:
        self.state = state
        self.notifier: Notifier | None = None

    def token_error(self, token: str) -> ApiError | None:
        """Why a token is refused: malformed (404, as Telegram) or not the configured one."""
        if not TOKEN_PATTERN.fullmatch(token):
            return _NOT_FOUND
        if self.state.token is not None and token != self.state.token:
            return _UNAUTHORIZED
        return None

    async def handle(self, request: Request) -> Response:
        """Endpoint for ``/bot<token>/<method>``."""
        token, name = request.path_params["token"], request.path_params["method"]
        refused = self.token_error(token)
        if refused is not None:
            return error_response(refused)
        self.state.use_token(token)
        found = find_method(name)
        method = found[0] if found else name
        self.state.record_request(method)
        params = Params({})
        try:
            body = parse_body(request.headers.get("content-type", ""), await request.body())
            params = Params({**request.query_params, **body})
            fault = self.state.pop_fault(method)
            if fault is not None and await self._apply_fault(fault):
                return self._fault_response(method, params, fault)
            if found is None:
                raise _NOT_FOUND
            result = await self._run(method, found[1], params)
        except ApiError as error:
            self._record(method, params, error=error)
            return error_response(error)
        except Exception as exc:  # a bug in the fake: answer like Telegram's 500, but log it
            log.exception("fake Telegram failed on %s", method)
            internal = ApiError(500, f"Internal Server Error: {exc!r}")
            self._record(method, params, error=internal)
            return error_response(internal)
        return self._success(method, params, result)

    async def _run(self, method: str, handler: Handler, params: Params) -> Any:
        if method == "getUpdates":
            return await self._get_updates(params)
        with self.state.cond:
            return handler(self.state, params)

    async def _get_updates(self, params: Params) -> list[Any]:
        """Long polling: answer as soon as there are updates, or after ``timeout`` seconds."""
        timeout = min(max(params.get_float("timeout", 0.0) or 0.0, 0.0), MAX_POLL_TIMEOUT)
        poll_id = self.state.begin_poll()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        first = True
        while True:
            event = self.notifier.event() if self.notifier else None
            updates = methods_bot.poll_updates(self.state, params, poll_id=poll_id, first=first)
            first = False
            remaining = deadline - loop.time()
            if updates or remaining <= 0 or event is None or self.state.closing:
                return updates
            await Notifier.wait(event, remaining)

    @staticmethod
    async def _apply_fault(fault: Fault) -> bool:
        """Sleep for the fault's delay; True if it then fails the call."""
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
        return fault.status is not None

    def _fault_response(self, method: str, params: Params, fault: Fault) -> Response:
        status, body, media_type = fault.render()
        description = body[:200]
        if media_type == "application/json":
            with contextlib.suppress(ValueError, AttributeError):
                description = json.loads(body).get("description") or description
        error = ApiError(status, description)
        self._record(method, params, error=error)
        return Response(body, status_code=status, media_type=media_type)

    def _success(self, method: str, params: Params, result: Any) -> JSONResponse:
        payload: dict[str, Any] = {"ok": True}
        if isinstance(result, Described):
            payload.update(result=result.result, description=result.description)
        else:
            payload["result"] = result
        self._record(method, params, result=payload["result"])
        return JSONResponse(payload)

    def _record(
        self, method: str, params: Params, *, result: Any = None, error: ApiError | None = None
    ) -> None:
        record = CallRecord(
            method=method,
            params=params.normalized(),
            ok=error is None,
            result=copy.deepcopy(result),
            error_code=error.code if error else None,
            description=error.description if error else None,
            timestamp=time.time(),
        )
        self.state.record_call(record)

    async def download(self, request: Request) -> Response:
        """Endpoint for ``/file/bot<token>/<file_path>``."""
        refused = self.token_error(request.path_params["token"])
        if refused is not None:
            return error_response(refused)
        with self.state.cond:
            stored = self.state.files.by_path(request.path_params["file_path"])
            content = stored.content if stored else None
            mime = (stored.mime_type if stored else None) or "application/octet-stream"
        if content is None:
            return error_response(_NOT_FOUND)
        return Response(content, media_type=mime)


def create_app(
    state: FakeState,
    controller: FakeTelegram,
    *,
    webhook_retry_delay: float = 0.1,
    webhook_timeout: float = 5.0,
    on_startup: Callable[[], None] | None = None,
) -> Starlette:
    """Build the ASGI app; its lifespan wires the loop notifier and the webhook deliverer."""
    api = BotApi(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        notifier = Notifier(asyncio.get_running_loop())
        api.notifier = notifier
        unsubscribe = state.add_listener(notifier.notify_threadsafe)
        deliverer = WebhookDeliverer(
            state, notifier, retry_delay=webhook_retry_delay, timeout=webhook_timeout
        )
        task = asyncio.create_task(deliverer.run(), name="fake-telegram-webhook")
        if on_startup is not None:
            on_startup()
        try:
            yield
        finally:
            unsubscribe()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            api.notifier = None

    async def index(request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        info = {"base_url": f"{base}/bot", "base_file_url": f"{base}/file/bot"}
        return JSONResponse({"ok": True, "result": {**info, "control": f"{base}/_control"}})

    routes = [
        Route("/", index),
        Route("/bot{token}/{method}", api.handle, methods=["GET", "POST"]),
        Route("/file/bot{token}/{file_path:path}", api.download, methods=["GET"]),
        *control_routes(controller),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
