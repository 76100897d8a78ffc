"""Runs `crmbot run` (or another command, e.g. `crmbot serve`) as a real subprocess against
the fake Telegram Bot API server.

Used by the end-to-end tests and the benchmarks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from bot.fake_telegram.server import FakeTelegramServer

TOKEN = "123456789:AAE2e-TestTokenForTheFakeServer_xyz"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotProcess:
    """A running `crmbot run` (or `crmbot serve`) and the file its logs go to."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path, database_url: str):
        self.process = process
        self.log_path = log_path
        self.engine = sa.create_engine(
            database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        )

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def scalar(self, sql: str, **params: object) -> object:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params: object) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def wait_until(self, sql: str, expected: object, *, timeout: float = 10.0) -> object:
        """Poll a query until it returns ``expected`` (the bot writes asynchronously)."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.scalar(sql)
            if value == expected:
                return value
            time.sleep(0.05)
        raise AssertionError(f"{sql!r} returned {value!r}, expected {expected!r}")


@contextmanager
def run_bot(
    fake: FakeTelegramServer,
    *,
    database_url: str,
    model_dir: Path,
    tmp_path: Path,
    staff_ids: str = "",
    args: tuple[str, ...] = (),
    ready_method: str = "getUpdates",
    extra_env: dict[str, str] | None = None,
    command: tuple[str, ...] = ("run",),
) -> Iterator[BotProcess]:
    """Start ``crmbot <command> <args>`` and wait until it calls ``ready_method`` on the fake;
    SIGINT (then, after 15 s, SIGKILL) when the block ends."""
    env = {
        **os.environ,
        "CRMBOT_TELEGRAM_TOKEN": TOKEN,
        "CRMBOT_TELEGRAM_API_URL": fake.base_url,
        "CRMBOT_TELEGRAM_FILE_URL": fake.base_file_url,
        "CRMBOT_DATABASE_URL": database_url,
        "CRMBOT_DATA_DIR": str(tmp_path),
        "CRMBOT_MODEL_PATH": str(model_dir),
        "CRMBOT_STAFF_IDS": staff_ids,
        "CRMBOT_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    log_path = tmp_path / f"bot-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *command, *args],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    bot = BotProcess(process, log_path, database_url)
    name = f"crmbot {' '.join(command)}"
    try:
        deadline = time.monotonic() + 90
        while not fake.was_called(ready_method):
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{bot.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} did not call {ready_method}:\n{bot.logs()}")
            time.sleep(0.05)
        yield bot
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        bot.engine.dispose()
