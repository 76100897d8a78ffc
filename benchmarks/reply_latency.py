"""Reply latency of the real bot: `crmbot run` against the fake Telegram Bot API server.

Sends customer messages one at a time (each from a different user, so every message also
creates a customer and a conversation) and measures the time from injecting the update to
the bot's reply arriving at the fake server: NLU, database writes and the Bot API round
trips included. Prints a table per mode.

    python benchmarks/reply_latency.py [--messages 200] [--postgres URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.fake_telegram import FakeTelegramServer
from bot.fake_telegram.bot_process import free_port, run_bot
from nlp.pipeline import load_or_train

MESSAGES = [
    "where is my order?",
    "has order #100234 shipped yet",
    "I want my money back",
    "how long does delivery take",
    "which payment methods do you take",
    "hi there",
    "my package never arrived, this is ridiculous",
    "can I change my delivery address",
    "thanks a lot!",
    "how do I reset my password",
]


def measure(fake: FakeTelegramServer, count: int) -> list[float]:
    latencies = []
    for n in range(count):
        user = 10_000 + n
        started = time.perf_counter()
        fake.inject_message(MESSAGES[n % len(MESSAGES)], user_id=user)
        fake.wait_for(1, chat_id=user, timeout=30)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument(
        "--postgres",
        help="also measure on this PostgreSQL URL (a scratch "
        "database: the schema is created in it)",
    )
    args = parser.parse_args()
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="crmbot-bench-"))
    with console.status("training / loading the NLU model"):
        cache = tmp / "models"
        load_or_train(cache_dir=cache)
        (model_dir,) = list(cache.iterdir())
    modes = [
        ("polling", "SQLite", f"sqlite:///{tmp / 'poll.sqlite3'}", ()),
    ]
    port = free_port()
    hook = (
        "--webhook-url",
        f"http://127.0.0.1:{port}/hook",
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        "--secret-token",
        "bench",
    )
    modes.append(("webhook", "SQLite", f"sqlite:///{tmp / 'hook.sqlite3'}", hook))
    if args.postgres:
        modes.append(("polling", "PostgreSQL", args.postgres, ()))
    table = Table(title=f"Reply latency, {args.messages} messages one at a time (ms)")
    for column in ("mode", "database", "p50", "p95", "p99", "max", "mean"):
        table.add_column(column, justify="right")
    for mode, db_name, url, extra in modes:
        with (
            FakeTelegramServer() as fake,
            run_bot(
                fake,
                database_url=url,
                model_dir=model_dir,
                tmp_path=tmp,
                args=extra,
                ready_method="setWebhook" if extra else "getUpdates",
            ),
        ):
            measure(fake, 10)  # warm-up
            with console.status(f"{mode} on {db_name}"):
                values = measure(fake, args.messages)
        table.add_row(
            mode,
            db_name,
            *(
                f"{v:.0f}"
                for v in (
                    percentile(values, 0.5),
                    percentile(values, 0.95),
                    percentile(values, 0.99),
                    max(values),
                    statistics.fmean(values),
                )
            ),
        )
    console.print(table)


if __name__ == "__main__":
    main()
