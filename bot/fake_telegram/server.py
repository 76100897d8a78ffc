"""``FakeTelegramServer``: a fake Telegram Bot API on loopback for end-to-end tests.

The server runs uvicorn in a background thread with its own event loop, so synchronous and async
tests can both use it; python-telegram-bot talks to it over real HTTP::

    with FakeTelegramServer() as server:
        app = (
            ApplicationBuilder()
            .token("123:abc")
            .base_url(server.base_url)
            .base_file_url(server.base_file_url)
            .build()
        )
        ...  # start polling
        server.inject_command("/start")
        [reply] = await server.wait_for_async(1, chat_id=111111)  # or wait_for() in sync code

Inherits the control API (``inject_*``, ``sent_messages``, ``wait_for``, ``inject_fault``...)
from ``FakeTelegram``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

import uvicorn

from .app import TOKEN_PATTERN, create_app
from .controller import FakeTelegram
from .state import FakeState

_STARTUP_TIMEOUT = 10.0


class FakeTelegramServer(FakeTelegram):
    """A fake Bot API HTTP server plus its in-process control API."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        *,
        bot_username: str = "crmbot_test_bot",
        bot_first_name: str = "CRM Test Bot",
        strict_chats: bool = False,
        webhook_retry_delay: float = 0.1,
        webhook_timeout: float = 5.0,
        log_level: str = "warning",
    ) -> None:
        """``port=0`` picks a free port. With ``token`` set, other tokens get 401.

        ``strict_chats`` makes sends to never-seen chats fail with "chat not found" instead of
        creating the chat on the fly.
        """
        if token is not None and not TOKEN_PATTERN.fullmatch(token):
            raise ValueError(f"not a bot token: {token!r}")
        state = FakeState(
            token=token,
            bot_username=bot_username,
            bot_first_name=bot_first_name,
            strict_chats=strict_chats,
        )
        super().__init__(state)
        self.host = host
        self._requested_port = port
        self._port: int | None = port or None
        self._log_level = log_level
        self._ready = threading.Event()
        self._app = create_app(
            state,
            self,
            webhook_retry_delay=webhook_retry_delay,
            webhook_timeout=webhook_timeout,
            on_startup=self._ready.set,
        )
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (known once started when constructed with ``port=0``)."""
        if self._port is None:
            raise RuntimeError("the server has not been started yet")
        return self._port

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:8081``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Value for ``ApplicationBuilder().base_url(...)`` / ``Bot(base_url=...)``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for ``ApplicationBuilder().base_file_url(...)``."""
        return f"{self.url}/file/bot"

    @property
    def control_url(self) -> str:
        """Root of the HTTP control API."""
        return f"{self.url}/_control"

    @property
    def running(self) -> bool:
        """Whether the background server thread is serving."""
        return self._thread is not None and self._thread.is_alive() and self._ready.is_set()

    # -- lifecycle ---------------------------------------------------------------------------

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections; without it
        # every keep-alive response waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        self._port = sock.getsockname()[1]
        return sock

    def _make_uvicorn(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self._app,
            log_level=self._log_level,
            log_config=None,
            access_log=False,
            lifespan="on",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        return uvicorn.Server(config)

    def start(self) -> Self:
        """Start serving in a background thread; returns once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self.state.closing = False
        self._ready.clear()
        sock = self._bind()
        self._uvicorn = self._make_uvicorn()
        self._thread = threading.Thread(
            target=self._uvicorn.run,
            kwargs={"sockets": [sock]},
            name=f"fake-telegram-{self._port}",
            daemon=True,
        )
        self._thread.start()
        self._sock = sock
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not self._ready.wait(0.05):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop(timeout=1.0)
                raise RuntimeError("the fake Telegram server failed to start")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Answer pending long polls, shut uvicorn down and join its thread."""
        if self._thread is None or self._uvicorn is None:
            return
        self.state.closing = True
        self.state.changed()
        self._uvicorn.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._uvicorn.force_exit = True
            self._thread.join(timeout)
        self._thread = None
        self._uvicorn = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def serve_forever(self, *, on_listening: Callable[[], None] | None = None) -> None:
        """Serve in the calling thread until interrupted (Ctrl+C / SIGTERM).

        ``on_listening`` runs once the port is bound (``url`` is then known).
        """
        sock = self._bind()
        self._uvicorn = self._make_uvicorn()
        if on_listening is not None:
            on_listening()
        try:
            self._uvicorn.run(sockets=[sock])
        finally:
            self._uvicorn = None
            sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port else "not started"
        return f"<FakeTelegramServer {where}>"
