"""Run a fake Telegram Bot API server: ``python -m bot.fake_telegram --port 8081``."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence

from .server import FakeTelegramServer


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of the standalone server."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.fake_telegram",
        description="Fake Telegram Bot API server for trying the bot without Telegram.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8081, help="TCP port (0 picks a free one)")
    parser.add_argument("--token", default=None, help="accept only this bot token")
    parser.add_argument("--bot-username", default="crmbot_test_bot", help="the bot's username")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the server in the foreground and print where to point the bot."""
    args = build_parser().parse_args(argv)
    server = FakeTelegramServer(
        args.host,
        args.port,
        args.token,
        bot_username=args.bot_username,
        log_level=args.log_level,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(on_listening=lambda: _announce(server))
    return 0


def _announce(server: FakeTelegramServer) -> None:
    print(f"Fake Telegram Bot API listening on {server.url}")
    print(f"  base_url:      {server.base_url}")
    print(f"  base_file_url: {server.base_file_url}")
    print(f"  control API:   {server.control_url}")
    print(
        f"  say hello:     curl -X POST {server.control_url}/inject/message "
        "-H 'Content-Type: application/json' -d '{\"text\": \"/start\"}'",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
