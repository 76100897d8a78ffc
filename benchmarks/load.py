"""Load benchmark: many customers at once against the real bot and a bare echo bot.

Runs `crmbot run` (NLU, database, replies) and, as the anchor, a bare python-telegram-bot echo
bot, each against the project's fake Telegram Bot API server on loopback, with the same
customers sending the same support questions (fixed seed). Every customer sends a message,
waits for the reply, then sends the next one, so as many messages are in flight as there are
customers. Measured per run: throughput (answered messages / time from the first injected
message to the last reply), latency p50/p99 (the update being queued to the reply's
sendMessage arriving at the fake server), the bot's CPU time per message (its processes,
from /proc: what bounds throughput on loopback) and lost and duplicated replies (each message
should get exactly one; replies are matched to messages per chat, in order). In the same run: the
load with 3 x 429 and 3 x 502 injected on sendMessage and 3 x 502 on getUpdates; with
--pg-restart, PostgreSQL restarted during a run; with --workers N, `crmbot serve --workers N`
against one worker. Prints the runs, then the targets.

    python benchmarks/load.py                          # 200 customers x 25 messages
    python benchmarks/load.py --users 20 --messages 5  # a quick run
    python benchmarks/load.py --pg-restart             # also restart PostgreSQL during a run
    python benchmarks/load.py --only load --no-postgres --logs /tmp/load-logs
    python benchmarks/load.py --only rtt --rtt 50      # with Telegram's round trip
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if TYPE_CHECKING:
    from bot.fake_telegram import FakeTelegramServer

# Support questions in our own words; each gets exactly one plain reply from the bot.
QUESTIONS = [
    "hi, I have a question",
    "how long does shipping usually take?",
    "what delivery options do you have",
    "which payment methods can I use",
    "what is your return policy",
    "is there a fee if I cancel my order",
    "I forgot my password, how do I reset it",
    "how can I change the email on my account",
    "how do I create an account",
    "where do I add a new shipping address",
    "can I change the delivery address for my order",
    "where can I find my invoice",
    "can I get a pdf invoice for my purchase",
    "how do I unsubscribe from the newsletter",
    "how do I place an order on your website",
    "how can I switch to my other account",
    "where is my order?",
    "when will my refund arrive",
    "do you ship to other countries",
    "can I pay with paypal",
    "thank you, that helps",
]
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
FIRST_USER_ID = 700_000
WARMUP_USER_ID = 699_999
WEBHOOK_SECRET = "load-bench"
# The 9 faults, spread over the first three quarters of the run (by messages answered).
FAULT_PLAN = [
    ("sendMessage", 429),
    ("getUpdates", 502),
    ("sendMessage", 502),
] * 3
PG_RESTART_AT = 0.4
SETTLE_SECONDS = 2.0


# --- the customers ---------------------------------------------------------------------------


@dataclass
class Customer:
    """One simulated customer: their messages and when each was injected."""

    user_id: int
    texts: list[str]
    sent_at: list[float] = field(default_factory=list)
    replies_before: int = 0  # replies to this chat already seen when the current message went
    global_before: int = 0  # replies to anyone already seen when the current message went
    waiting: bool = False
    gave_up: int = 0

    @property
    def done(self) -> bool:
        return not self.waiting and len(self.sent_at) == len(self.texts)


def make_customers(users: int, messages: int, seed: int) -> list[Customer]:
    rng = random.Random(seed)
    return [
        Customer(FIRST_USER_ID + n, [rng.choice(QUESTIONS) for _ in range(messages)])
        for n in range(users)
    ]


# --- one measured run -----------------------------------------------------------------------


@dataclass
class Outcome:
    """What one run measured."""

    messages: int
    answered: int
    lost: int
    duplicated: int
    seconds: float
    latencies_ms: list[float]
    gave_up: int
    failed_calls: Counter[str]
    unexpected_replies: int
    calls: Counter[str]

    @property
    def throughput(self) -> float:
        return self.answered / self.seconds if self.seconds > 0 else 0.0


class LoadDriver:
    """Closed loop over the fake server: every customer sends, waits for a reply, sends again.

    A customer stops waiting for a reply (counted lost unless it turns up later) once the bot
    has answered ``2 x customers + 20`` other messages since and ``min_wait`` seconds have
    passed (a reply held up by the injected 429s, which a bot must wait out, is late, not
    lost), or after ``idle_timeout`` seconds without any reply at all. ``hooks`` run once
    when the given fraction of messages is answered (faults, a database restart).
    """

    def __init__(
        self,
        fake: FakeTelegramServer,
        customers: list[Customer],
        *,
        idle_timeout: float,
        min_wait: float,
        hooks: list[tuple[float, Callable[[], None]]],
        on_progress: Callable[[int, int], None],
        alive: Callable[[], bool],
    ) -> None:
        self.fake = fake
        self.alive = alive
        self.customers = customers
        self.by_chat = {c.user_id: c for c in customers}
        self.replies: dict[int, list[float]] = {c.user_id: [] for c in customers}
        self.idle_timeout = idle_timeout
        self.min_wait = min_wait
        self.hooks = sorted(hooks, key=lambda hook: hook[0])
        self.on_progress = on_progress
        self.total = sum(len(c.texts) for c in customers)
        self.cursor = len(fake.state.calls)
        self.reply_count = 0
        self.unexpected = 0
        self.failed: Counter[str] = Counter()
        self.methods: Counter[str] = Counter()
        self.last_reply = time.time()

    def run(self) -> Outcome:
        for customer in self.customers:
            self._send(customer)
        last_check = time.monotonic()
        while not all(c.done for c in self.customers):
            for chat_id in self._collect(0.05):
                customer = self.by_chat[chat_id]
                if customer.waiting and len(self.replies[chat_id]) > customer.replies_before:
                    customer.waiting = False
                    self._send(customer)
            answered = sum(len(c.sent_at) - c.waiting for c in self.customers)
            self._fire_hooks(answered / self.total)
            if time.monotonic() - last_check > 0.25:
                last_check = time.monotonic()
                if not self.alive():
                    raise RuntimeError("the bot exited during the run")
                self._give_up_stalled()
                self.on_progress(answered, self.total)
        self._settle()
        return self._account()

    def _send(self, customer: Customer) -> None:
        if len(customer.sent_at) == len(customer.texts):
            return
        text = customer.texts[len(customer.sent_at)]
        customer.replies_before = len(self.replies[customer.user_id])
        customer.global_before = self.reply_count
        customer.waiting = True
        customer.sent_at.append(time.time())
        self.fake.inject_message(
            text, user_id=customer.user_id, first_name=f"Customer{customer.user_id}"
        )

    def _collect(self, timeout: float) -> set[int]:
        """Read new Bot API calls; return the customer chats that got a reply."""
        state = self.fake.state
        with state.cond:
            if len(state.calls) == self.cursor:
                state.cond.wait(timeout)
            new = state.calls[self.cursor :]
            self.cursor += len(new)
        chats = set()
        self.methods.update(record.method for record in new)
        for record in new:
            if record.method != "sendMessage":
                continue
            if not record.ok:
                self.failed[f"sendMessage {record.error_code}"] += 1
                continue
            chat_id = int(record.result["chat"]["id"])
            if chat_id not in self.replies:
                self.unexpected += 1
                continue
            self.replies[chat_id].append(record.timestamp)
            self.reply_count += 1
            self.last_reply = time.time()
            chats.add(chat_id)
        for record in new:
            if record.method != "sendMessage" and not record.ok:
                self.failed[f"{record.method} {record.error_code}"] += 1
        return chats

    def _give_up_stalled(self) -> None:
        idle = time.time() - self.last_reply > self.idle_timeout
        patience = 2 * len(self.customers) + 20
        now = time.time()
        for customer in self.customers:
            overtaken = (
                self.reply_count - customer.global_before > patience
                and now - customer.sent_at[-1] > self.min_wait
            )
            if customer.waiting and (idle or overtaken):
                customer.waiting = False
                customer.gave_up += 1
                self._send(customer)
        if idle:
            self.last_reply = time.time()

    def _fire_hooks(self, fraction: float) -> None:
        while self.hooks and self.hooks[0][0] <= fraction:
            _, hook = self.hooks.pop(0)
            hook()

    def _settle(self) -> None:
        """Wait for late or duplicated replies: until none came for ``SETTLE_SECONDS``."""
        deadline = time.monotonic() + 30
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < SETTLE_SECONDS:
            if self._collect(0.1) or self.fake.pending_updates():
                quiet_since = time.monotonic()

    def _account(self) -> Outcome:
        """Match replies to messages per chat: each message owns the replies that arrived
        between it and the customer's next message."""
        lost = duplicated = 0
        latencies: list[float] = []
        first_sent = min(c.sent_at[0] for c in self.customers)
        last_reply = first_sent
        for customer in self.customers:
            times = sorted(self.replies[customer.user_id])
            duplicated += sum(1 for t in times if t < customer.sent_at[0])
            bounds = [*customer.sent_at[1:], math.inf]
            for sent, until in zip(customer.sent_at, bounds, strict=True):
                own = [t for t in times if sent <= t < until]
                if not own:
                    lost += 1
                    continue
                duplicated += len(own) - 1
                latencies.append((own[0] - sent) * 1000)
                last_reply = max(last_reply, own[0])
        return Outcome(
            messages=self.total,
            answered=len(latencies),
            lost=lost,
            duplicated=duplicated,
            seconds=last_reply - first_sent,
            latencies_ms=latencies,
            gave_up=sum(c.gave_up for c in self.customers),
            failed_calls=self.failed,
            unexpected_replies=self.unexpected,
            calls=self.methods,
        )


def warm_up(fake: FakeTelegramServer, count: int = 3) -> None:
    """A few messages from a customer outside the measured set (first requests, lazy imports)."""
    for n in range(count):
        fake.inject_message(QUESTIONS[n], user_id=WARMUP_USER_ID, first_name="Warmup")
        fake.wait_for(n + 1, chat_id=WARMUP_USER_ID, timeout=60)


# --- the echo bot (the anchor) ----------------------------------------------------------------


def echo_bot_main(args: argparse.Namespace) -> None:
    """A bare python-telegram-bot echo bot: one handler, no database, no NLU."""
    from telegram import Update
    from telegram.ext import AIORateLimiter, ApplicationBuilder, ContextTypes, MessageHandler
    from telegram.ext import filters as tg_filters

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None and message.text:
            await context.bot.send_message(message.chat_id, message.text)

    # Any: PTB's builder changes its generic type when a rate limiter is added.
    builder: Any = ApplicationBuilder().token(args.token).base_url(args.api_url)
    if args.rate_limiter:  # as the full bot does
        builder = builder.rate_limiter(AIORateLimiter(max_retries=3))
    application = builder.build()
    application.add_handler(MessageHandler(tg_filters.TEXT, echo))
    if args.webhook_port is None:
        application.run_polling(allowed_updates=Update.ALL_TYPES)
        return
    application.run_webhook(
        listen="127.0.0.1",
        port=args.webhook_port,
        url_path="hook",
        webhook_url=f"http://127.0.0.1:{args.webhook_port}/hook",
        secret_token=WEBHOOK_SECRET,
        allowed_updates=Update.ALL_TYPES,
    )


@dataclass
class Process:
    """A bot subprocess and its log file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _kill_leftover(processes: list[subprocess.Popen[bytes]]) -> None:
    """Last resort when a second Ctrl-C cut a graceful stop short."""
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


@contextlib.contextmanager
def stopping(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """Stop a child on the way out: SIGINT (PTB shuts down cleanly), then SIGKILL."""
    try:
        yield
    finally:
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            process.wait(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


@contextlib.contextmanager
def run_echo_bot(
    fake: FakeTelegramServer, *, tmp: Path, webhook: bool, rate_limiter: bool
) -> Iterator[Process]:
    from bot.fake_telegram.bot_process import TOKEN, free_port

    command = [sys.executable, str(Path(__file__).resolve()), "--echo-bot"]
    command += ["--api-url", fake.base_url, "--token", TOKEN]
    if webhook:
        command += ["--webhook-port", str(free_port())]
    if rate_limiter:
        command.append("--rate-limiter")
    log_path = tmp / f"echo-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    echo = Process(process, log_path)
    ready = "setWebhook" if webhook else "getUpdates"
    with stopping(process):
        deadline = time.monotonic() + 60
        while not fake.was_called(ready):
            if process.poll() is not None:
                raise RuntimeError(
                    f"the echo bot exited with {process.returncode}:\n{echo.logs()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"the echo bot did not call {ready}:\n{echo.logs()}")
            time.sleep(0.05)
        yield echo


# --- PostgreSQL -------------------------------------------------------------------------------


def postgres_problem(url: str) -> str | None:
    """None if PostgreSQL answers at ``url``, else why not."""
    import sqlalchemy as sa

    engine = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1),
        connect_args={"connect_timeout": 3},
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        engine.dispose()
    return None


@contextlib.contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A URL to a new, empty schema in ``url``'s database, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"load_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1),
        connect_args={"connect_timeout": 5},
        pool_pre_ping=True,
    )
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        deadline = time.monotonic() + 60  # after a restart the server may still be starting
        while True:
            try:
                with admin.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                break
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    print(f"could not drop schema {schema}; drop it by hand", file=sys.stderr)
                    break
                time.sleep(1)
        admin.dispose()


def restart_command(url: str, given: str | None) -> list[str] | str:
    """The command that restarts the cluster behind ``url``, or why there is none."""
    if given:
        return shlex.split(given)
    if shutil.which("pg_ctlcluster") is None or shutil.which("pg_lsclusters") is None:
        return "pg_ctlcluster not found"
    from sqlalchemy.engine import make_url

    port = make_url(url).port or 5432
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    )
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == str(port):
            # without systemd (a container) pg_ctlcluster must not hand over to systemctl
            direct = [] if Path("/run/systemd/system").is_dir() else ["--skip-systemctl-redirect"]
            return ["pg_ctlcluster", *direct, fields[0], fields[1], "restart"]
    return f"no local cluster on port {port} in pg_lsclusters"


class Restart:
    """Restarts PostgreSQL in a thread (the load keeps going meanwhile)."""

    def __init__(self, command: list[str], log_path: Path) -> None:
        self.command = command
        self.log_path = log_path
        self.thread: threading.Thread | None = None
        self.seconds = 0.0
        self.error: str | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="pg-restart", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        # Output to a file, not a pipe: the restarted server inherits the descriptors and
        # would keep a pipe open for as long as it runs.
        with self.log_path.open("wb") as log:
            try:
                code = subprocess.run(
                    self.command, stdout=log, stderr=subprocess.STDOUT, timeout=120, check=False
                ).returncode
            except (OSError, subprocess.TimeoutExpired) as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                code = 0
        if code != 0:
            output = self.log_path.read_text(errors="replace").strip()[-200:]
            self.error = f"exit {code}: {output}"
        self.seconds = time.monotonic() - started

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(130)


# --- scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    bot: str  # "full", "echo" or "echo + rate limiter"
    mode: str  # "polling" or "webhook"
    database: str  # "SQLite", "PostgreSQL" or "—"
    faults: bool = False
    pg_restart: bool = False
    workers: int = 0  # 0: `crmbot run`; N: `crmbot serve --workers N`
    rtt_ms: int = 0  # every sendMessage answered this late (Telegram's own round trip)

    @property
    def run(self) -> str:
        if self.rtt_ms:
            return f"rtt {self.rtt_ms} ms"
        if self.pg_restart:
            return "pg restart"
        if self.workers:
            return f"serve ×{self.workers}"
        return "faults" if self.faults else "load"

    @property
    def label(self) -> str:
        return f"{self.bot}, {self.mode}, {self.database}, {self.run}"


@dataclass
class Row:
    scenario: Scenario
    outcome: Outcome | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    planned_faults: int = 0
    cpu_seconds: float | None = None  # the bot's processes, during the run

    @property
    def cpu_ms_per_message(self) -> str:
        if self.cpu_seconds is None or self.outcome is None or not self.outcome.answered:
            return "—"
        return f"{self.cpu_seconds * 1000 / self.outcome.answered:.1f}"


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a process and all its descendants so far, from /proc
    (None where there is no /proc, or the process is gone)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, todo = 0.0, [pid]
    try:
        while todo:
            current = todo.pop()
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    except (OSError, ValueError, IndexError):
        return None
    return total


ERROR_LINE = re.compile(r"error while handling update \d+: (\w+)")
TRACEBACK_LAST = re.compile(r"^(?:telegram\.error|sqlalchemy\.exc|psycopg\.errors)\.(\w+)", re.M)


def error_summary(logs: str, *, full_bot: bool) -> str:
    found = ERROR_LINE.findall(logs) if full_bot else TRACEBACK_LAST.findall(logs)
    return ", ".join(f"{name} x {n}" for name, n in Counter(found).most_common())


class Bench:
    def __init__(self, args: argparse.Namespace, console: Console, tmp: Path) -> None:
        self.args = args
        self.console = console
        self.tmp = tmp
        self.model_dir = Path(args.model) if args.model else None

    def model(self) -> Path:
        if self.model_dir is None:
            from nlp.pipeline import default_model_dir, load_or_train

            with self.console.status("training / loading the NLU model"):
                load_or_train()
                self.model_dir = default_model_dir()
        return self.model_dir

    def measure(self, scenario: Scenario, database_url: str | None = None) -> Row:
        from bot.fake_telegram import FakeTelegramServer
        from bot.fake_telegram.bot_process import free_port, run_bot

        row = Row(scenario)
        customers = make_customers(self.args.users, self.args.messages, self.args.seed)
        webhook = scenario.mode == "webhook"
        with contextlib.ExitStack() as stack:
            fake = stack.enter_context(FakeTelegramServer())
            if scenario.bot == "full":
                assert database_url is not None
                started: list[subprocess.Popen[bytes]] = []
                stack.callback(_kill_leftover, started)
                port = free_port()
                hook_args: tuple[str, ...] = (
                    *("--webhook-url", f"http://127.0.0.1:{port}/hook"),
                    *("--listen", "127.0.0.1", "--port", str(port)),
                    *("--secret-token", WEBHOOK_SECRET),
                )
                if scenario.workers:
                    hook_args += ("--workers", str(scenario.workers))
                # `crmbot serve` (run_bot's ``command``) only when asked for: --workers
                serve: dict[str, Any] = {"command": ("serve",)} if scenario.workers else {}
                bot: Any = stack.enter_context(
                    run_bot(
                        fake,
                        database_url=database_url,
                        model_dir=self.model(),
                        tmp_path=self.tmp,
                        args=hook_args if webhook else (),
                        ready_method="setWebhook" if webhook else "getUpdates",
                        # every benchmark customer writes a message as soon as the previous
                        # one is answered, far faster than a person: per-user throttling
                        # would answer them with its notice, so it is set out of the way
                        # and no catch-up at start: depending on the time of day it would run
                        # the nightly refresh or a digest during the run (a one-off, not the
                        # cost of messages)
                        extra_env={
                            "CRMBOT_FLOOD_MESSAGES": "100000",
                            "CRMBOT_MISFIRE_GRACE_HOURS": "0",
                        },
                        **serve,
                    )
                )
                started.append(bot.process)
            else:
                bot = stack.enter_context(
                    run_echo_bot(
                        fake,
                        tmp=self.tmp,
                        webhook=webhook,
                        rate_limiter=scenario.bot != "echo",
                    )
                )
            warm_up(fake)
            if scenario.rtt_ms:
                fake.inject_fault("sendMessage", delay=scenario.rtt_ms / 1000, times=10**9)
            hooks, restart = self._hooks(fake, scenario, row)
            label = scenario.label
            with self.console.status(label) as status:

                def progress(done: int, total: int) -> None:
                    status.update(f"{label}: {done}/{total} messages answered")

                driver = LoadDriver(
                    fake,
                    customers,
                    idle_timeout=self.args.idle_timeout,
                    # three 429s in a row on one reply make it wait 3 x retry_after
                    min_wait=3 * self.args.retry_after + 2,
                    hooks=hooks,
                    on_progress=progress,
                    alive=lambda: bot.process.poll() is None,
                )
                cpu_before = cpu_seconds(bot.process.pid)
                row.outcome = driver.run()
                cpu_after = cpu_seconds(bot.process.pid)
                if cpu_before is not None and cpu_after is not None:
                    row.cpu_seconds = cpu_after - cpu_before
            if restart is not None:
                restart.join()
                if restart.error:
                    row.notes.append(f"restart failed: {restart.error}")
                else:
                    row.notes.append(f"restart took {restart.seconds:.1f} s")
            logs = bot.logs()
        if self.args.logs:
            name = f"{scenario.bot}-{scenario.mode}-{scenario.database}-{scenario.run}"
            keep = Path(self.args.logs) / f"{re.sub(r'[^A-Za-z0-9]+', '-', name)}.log"
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_text(logs, encoding="utf-8")
        self._notes(row, logs)
        return row

    def _hooks(
        self, fake: FakeTelegramServer, scenario: Scenario, row: Row
    ) -> tuple[list[tuple[float, Callable[[], None]]], Restart | None]:
        hooks: list[tuple[float, Callable[[], None]]] = []
        if scenario.faults:
            plan = [
                (m, s) for m, s in FAULT_PLAN if scenario.mode == "polling" or m != "getUpdates"
            ]
            for n, (method, status) in enumerate(plan):

                def inject(method: str = method, status: int = status) -> None:
                    retry = self.args.retry_after if status == 429 else None
                    fake.inject_fault(method, status=status, retry_after=retry)

                hooks.append((0.75 * (n + 1) / (len(plan) + 1), inject))
            row.planned_faults = len(plan)
            if scenario.mode == "webhook":
                row.notes.append("getUpdates faults: n/a in webhook mode")
        restart = None
        if scenario.pg_restart:
            command = restart_command(self.args.postgres, self.args.pg_restart_cmd)
            assert isinstance(command, list)
            restart = Restart(command, self.tmp / "pg-restart.log")
            hooks.append((PG_RESTART_AT, restart.start))
        return hooks, restart

    def _notes(self, row: Row, logs: str) -> None:
        outcome = row.outcome
        assert outcome is not None
        per_message = ", ".join(
            f"{method} {n / outcome.messages:.2f}" for method, n in outcome.calls.most_common()
        )
        row.notes.append(f"Bot API calls per customer message: {per_message}")
        if outcome.failed_calls:
            calls = ", ".join(f"{k} x {n}" for k, n in sorted(outcome.failed_calls.items()))
            row.notes.append(f"failed calls at the fake server: {calls}")
        if row.planned_faults:
            hit = sum(n for k, n in outcome.failed_calls.items() if k.endswith((" 429", " 502")))
            row.notes.append(f"{hit} of {row.planned_faults} injected faults hit")
        errors = error_summary(logs, full_bot=row.scenario.bot == "full")
        if errors:
            row.notes.append(f"errors in the bot's log: {errors}")
        if outcome.gave_up:
            row.notes.append(f"customers stopped waiting for {outcome.gave_up} replies")
        if outcome.unexpected_replies:
            row.notes.append(f"{outcome.unexpected_replies} messages to other chats")


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    anchors = ["echo", "echo + rate limiter"] if args.echo_rate_limiter else ["echo"]
    found: list[Scenario] = []
    for mode in ("polling", "webhook"):
        found += [Scenario(anchor, mode, "—") for anchor in anchors]
    for database in ("SQLite", "PostgreSQL"):
        found += [Scenario("full", mode, database) for mode in ("polling", "webhook")]
    if not args.no_faults:
        for mode in ("polling", "webhook"):
            found += [Scenario("echo", mode, "—", faults=True)]
            found += [Scenario("full", mode, "SQLite", faults=True)]
    found.append(Scenario("full", "polling", "PostgreSQL", pg_restart=True))
    if args.rtt:
        found += [Scenario(bot, "polling", db, rtt_ms=args.rtt) for bot, db in RTT_BOTS]
    if args.workers:
        for workers in sorted({1, args.workers}):
            found.append(Scenario("full", "webhook", "PostgreSQL", workers=workers))
    if args.only:
        found = [s for s in found if _kind(s) in args.only]
    return found


RTT_BOTS = [("echo", "—"), ("full", "SQLite")]


def _kind(scenario: Scenario) -> str:
    """The --only name of a scenario's kind of run."""
    if scenario.pg_restart:
        return "pg-restart"
    if scenario.workers:
        return "workers"
    if scenario.rtt_ms:
        return "rtt"
    return scenario.run


def run_all(args: argparse.Namespace, console: Console, tmp: Path) -> list[Row]:
    bench = Bench(args, console, tmp)
    pg_problem = "skipped: --no-postgres" if args.no_postgres else postgres_problem(args.postgres)
    if pg_problem and not args.no_postgres:
        pg_problem = f"skipped: PostgreSQL at {args.postgres} does not answer ({pg_problem})"
    rows: list[Row] = []
    try:
        for scenario in scenarios(args):
            skipped = why_not(args, scenario, pg_problem)
            if skipped:
                rows.append(Row(scenario, skipped=skipped))
                continue
            try:
                rows.append(run_one(bench, scenario, tmp / f"load-{len(rows)}.sqlite3"))
            except Exception as exc:  # e.g. the bot does not start: report, go on with the rest
                console.log(f"{scenario.label}: {exc}"[:3000], markup=False)
                first_line = (str(exc).splitlines() or [""])[0][:80]
                rows.append(Row(scenario, skipped=f"failed: {type(exc).__name__}: {first_line}"))
            console.log(describe(rows[-1]))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: the results so far[/yellow]")
    return rows


def why_not(args: argparse.Namespace, scenario: Scenario, pg_problem: str | None) -> str | None:
    """Why a run is skipped, or None."""
    if scenario.database == "PostgreSQL" and pg_problem:
        return pg_problem
    if scenario.pg_restart:
        if not args.pg_restart:
            return "not run (pass --pg-restart)"
        command = restart_command(args.postgres, args.pg_restart_cmd)
        if isinstance(command, str):
            return f"not run: {command}"
    return None


def run_one(bench: Bench, scenario: Scenario, sqlite_path: Path) -> Row:
    if scenario.database == "PostgreSQL":
        with fresh_schema(bench.args.postgres) as url:
            return bench.measure(scenario, url)
    if scenario.database == "SQLite":
        return bench.measure(scenario, f"sqlite:///{sqlite_path}")
    return bench.measure(scenario)


# --- tables -----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(row: Row) -> str:
    head = row.scenario.label
    if row.outcome is None:
        return f"{head}: {row.skipped}"
    o = row.outcome
    return (
        f"{head}: {o.throughput:.1f} msgs/s, CPU {row.cpu_ms_per_message} ms/msg, "
        f"lost {o.lost}, duplicated {o.duplicated}"
        f"{'; ' if row.notes else ''}{'; '.join(row.notes)}"
    )


def raw_table(rows: list[Row], title: str) -> Table:
    table = Table(title=title)
    for column in ("bot", "run", "mode", "db"):
        table.add_column(column)
    for column in ("msgs", "msgs/s", "p50 ms", "p99 ms", "CPU ms/msg", "lost", "dup"):
        table.add_column(column, justify="right")
    table.add_column("note")
    for row in rows:
        s = row.scenario
        if row.outcome is None:
            table.add_row(s.bot, s.run, s.mode, s.database, *["—"] * 7, row.skipped)
            continue
        o = row.outcome
        p50 = f"{percentile(o.latencies_ms, 0.5):.0f}" if o.latencies_ms else "—"
        p99 = f"{percentile(o.latencies_ms, 0.99):.0f}" if o.latencies_ms else "—"
        table.add_row(
            s.bot,
            s.run,
            s.mode,
            s.database,
            str(o.messages),
            f"{o.throughput:.1f}",
            p50,
            p99,
            row.cpu_ms_per_message,
            _flag(o.lost),
            _flag(o.duplicated),
            "see below" if row.notes else "",
        )
    return table


def _flag(count: int) -> str:
    return f"[bold red]{count}[/bold red]" if count else "0"


def _find(rows: list[Row], **match: object) -> Row | None:
    for row in rows:
        if all(getattr(row.scenario, key) == value for key, value in match.items()):
            return row
    return None


def _lost_dup(row: Row | None) -> tuple[str, str | None]:
    """("lost L, duplicated D", met) for a run, or why it has no figure."""
    if row is None:
        return "not run", None
    if row.outcome is None:
        return row.skipped or "not run", None
    o = row.outcome
    return (
        f"lost {o.lost}, duplicated {o.duplicated}",
        "yes" if o.lost == o.duplicated == 0 else "no",
    )


def targets_table(rows: list[Row], title: str) -> Table:
    table = Table(title=title)
    for column in ("row", "measured", "target", "met"):
        table.add_column(column)
    for database in ("SQLite", "PostgreSQL"):
        for mode in ("polling", "webhook"):
            full = _find(rows, bot="full", mode=mode, database=database, run="load")
            echo = _find(rows, bot="echo", mode=mode, run="load")
            name = f"full / echo throughput, {mode}, {database}"
            if full is None or full.outcome is None or echo is None or echo.outcome is None:
                why = (full.skipped if full else None) or "not run"
                table.add_row(name, why, "≥ 0.6", "—")
                continue
            table.add_row(
                name,
                _ratio(full.outcome, echo.outcome),
                "≥ 0.6",
                _met(full.outcome.throughput >= 0.6 * echo.outcome.throughput),
            )
            limited = _find(rows, bot="echo + rate limiter", mode=mode, run="load")
            if limited is not None and limited.outcome is not None:
                name = f"  full / echo with AIORateLimiter, {mode}, {database}"
                table.add_row(name, _ratio(full.outcome, limited.outcome), "report", "—")
    load_rows = [
        r
        for r in rows
        if r.scenario.bot == "full"
        and (r.scenario.run == "load" or r.scenario.workers or r.scenario.rtt_ms)
    ]
    for row in load_rows:
        s = row.scenario
        measured, met = _lost_dup(row)
        name = f"lost / duplicated, {s.mode}, {s.database}"
        if s.workers:
            name += f", crmbot serve ×{s.workers}"
        if s.rtt_ms:
            name += f", {s.rtt_ms} ms round trip"
        table.add_row(name, measured, "0 / 0", _yn(met))
    echo_rows = [r for r in rows if r.scenario.bot.startswith("echo") and not r.scenario.faults]
    measured_echo = [r.outcome for r in echo_rows if r.outcome is not None]
    clean = [r for r in echo_rows if r.outcome and (r.outcome.lost or r.outcome.duplicated)]
    table.add_row(
        "echo anchor lost / duplicated without faults (checks the benchmark)",
        "; ".join(describe(r) for r in clean)
        or ("0 in every run" if measured_echo else "not run"),
        "0 / 0",
        _met(not clean) if measured_echo else "—",
    )
    for mode in ("polling", "webhook"):
        what = "3×429 + 3×502 on sendMessage" + (
            ", 3×502 on getUpdates" if mode == "polling" else ""
        )
        measured, met = _lost_dup(_find(rows, bot="full", mode=mode, faults=True))
        table.add_row(f"faults ({what}), full bot, {mode}, SQLite", measured, "0 / 0", _yn(met))
        echo_fault = _find(rows, bot="echo", mode=mode, faults=True)
        measured, _ = _lost_dup(echo_fault)
        table.add_row(f"  the same on the echo anchor, {mode}", measured, "report", "—")
    measured, met = _lost_dup(_find(rows, pg_restart=True))
    table.add_row("PostgreSQL restarted during the run, polling", measured, "0 lost", _yn(met))
    table.add_row(*_workers_row(rows))
    full = next((r for r in rows if r.scenario.bot == "full" and r.scenario.rtt_ms), None)
    echo = next((r for r in rows if r.scenario.bot == "echo" and r.scenario.rtt_ms), None)
    if full is not None and echo is not None and full.outcome and echo.outcome:
        name = f"full / echo with a {full.scenario.rtt_ms} ms Bot API round trip, polling, SQLite"
        table.add_row(name, _ratio(full.outcome, echo.outcome), "report", "—")
    return table


def _workers_row(rows: list[Row]) -> tuple[str, str, str, str]:
    served = [r for r in rows if r.scenario.workers]
    many = max(served, key=lambda r: r.scenario.workers, default=None)
    one = _find(rows, workers=1)
    name = f"{many.scenario.workers if many else 2} webhook workers on PostgreSQL / 1 worker"
    if many is None or one is None:
        return (
            name,
            "not supported yet (`crmbot run` is one process; --workers N measures "
            "`crmbot serve` where the tree has it)",
            "report the ratio",
            "—",
        )
    if many.outcome is None or one.outcome is None:
        return name, many.skipped or one.skipped or "not run", "report the ratio", "—"
    return name, _ratio(many.outcome, one.outcome), "report the ratio", "—"


def _ratio(full: Outcome, echo: Outcome) -> str:
    ratio = full.throughput / echo.throughput if echo.throughput else 0.0
    return f"{ratio:.2f} ({full.throughput:.1f} / {echo.throughput:.1f} msgs/s)"


def _met(ok: bool) -> str:
    return "yes" if ok else "[bold red]no[/bold red]"


def _yn(met: str | None) -> str:
    return "—" if met is None else _met(met == "yes")


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=200, help="customers at once (200)")
    parser.add_argument("--messages", type=int, default=25, help="messages per customer (25)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the message mix (7)")
    parser.add_argument(
        "--postgres",
        default=DEFAULT_POSTGRES,
        help=f"PostgreSQL database to measure on; each run uses a fresh schema, dropped "
        f"afterwards ({DEFAULT_POSTGRES})",
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL rows")
    parser.add_argument("--no-faults", action="store_true", help="skip the fault runs")
    parser.add_argument(
        "--only",
        action="append",
        choices=["load", "faults", "pg-restart", "workers", "rtt"],
        help="run only these kinds of runs (repeatable; default: all)",
    )
    parser.add_argument(
        "--pg-restart",
        action="store_true",
        help="restart PostgreSQL (pg_ctlcluster) during one run: every client of that "
        "cluster sees the restart",
    )
    parser.add_argument(
        "--pg-restart-cmd",
        help="command that restarts PostgreSQL (default: pg_ctlcluster VERSION NAME restart "
        "for the local cluster on the URL's port)",
    )
    parser.add_argument(
        "--echo-rate-limiter",
        action="store_true",
        help="also measure the echo bot with AIORateLimiter, as the full bot uses",
    )
    parser.add_argument(
        "--retry-after", type=int, default=1, help="retry_after of the injected 429s (1 s)"
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=10.0,
        help="seconds without any reply before waiting customers give up (10)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="also measure `crmbot serve --workers N` (webhook, PostgreSQL) against 1 worker",
    )
    parser.add_argument(
        "--rtt",
        type=int,
        default=0,
        metavar="MS",
        help="also run echo and full bot (polling, SQLite) with every sendMessage answered "
        "MS ms late, as over the internet to api.telegram.org (e.g. 50)",
    )
    parser.add_argument("--logs", help="keep the bots' logs in this folder")
    parser.add_argument("--model", help="NLU model folder (default: the cached default model)")
    # The echo bot's own process (started by the benchmark).
    parser.add_argument("--echo-bot", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--webhook-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rate-limiter", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.users < 1 or args.messages < 1:
        parser.error("--users and --messages must be at least 1")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    args = parse_args()
    if args.echo_bot:
        echo_bot_main(args)
        return
    # Ctrl-C and SIGTERM stop the runs; the context managers then stop the bots and remove
    # temporary files and schemas. (SIGINT is set explicitly: a shell may start us ignoring it.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    console = Console(width=None if sys.stdout.isatty() else 150)
    size = f"{args.users} customers × {args.messages} messages, seed {args.seed}"
    with tempfile.TemporaryDirectory(prefix="crmbot-load-", ignore_cleanup_errors=True) as tmp:
        rows = run_all(args, console, Path(tmp))
    console.print(raw_table(rows, f"Load, per run ({size})"))
    for row in rows:
        if row.notes:
            console.print(f"  {describe(row)}")
    console.print(targets_table(rows, f"Load benchmark targets ({size})"))


if __name__ == "__main__":
    main()
