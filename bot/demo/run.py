"""Runs the whole demo: fresh database, demo shop, scripted conversations, summary."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.demo.history import generate_history
from bot.demo.script import DEMO_STAFF_ID, STAFF_SCRIPT, link_demo_customers, play_script
from bot.demo.shop import generate_shop
from bot.services.context import Services
from bot.services.digest import build_digest
from bot.services.jobs import run_job
from bot.services.offers import mark_sent
from bot.services.offers.campaign import queued_sends
from bot.services.refresh import run_refresh
from bot.settings import Settings
from bot.wiring import build_services
from db import queries
from db.engine import session_scope
from db.models import Customer


def demo_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'demo.sqlite3').as_posix()}"


def run_demo(
    settings: Settings,
    *,
    console: Console,
    customers: int = 2000,
    seed: int = 42,
    as_of: datetime | None = None,
) -> None:
    started = time.perf_counter()
    as_of = as_of or datetime.now(UTC)
    path = settings.data_dir / "demo.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    demo_settings = settings.model_copy(
        update={
            "database_url": demo_database_url(settings.data_dir),
            "staff_ids": frozenset({DEMO_STAFF_ID}),
            "staff_chat_id": None,
            "shop_name": settings.shop_name if settings.shop_name != "shop" else "Northwind Goods",
        }
    )
    console.print(f"[bold]crmbot demo[/] — a fresh demo database at {path}")
    with console.status("Loading the NLU model (trained on first use)…"):
        services = build_services(demo_settings)
    with (
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
        session_scope(services.session_factory) as session,
    ):
        summary = generate_shop(
            session, seed=seed, customers=customers, as_of=as_of, progress=progress
        )
    with session_scope(services.session_factory) as session:
        senders = link_demo_customers(session)
        products = queries.product_names(session=session)
        services.nlu.set_products(products)  # the past chats name them too
        history = generate_history(
            session,
            services,
            customer_ids=list(range(len(senders) + 1, customers + 1)),
            now=as_of,
            seed=seed,
        )
    table = Table(title="Demo shop")
    columns = ("products", "customers", "orders", "order lines", "past chats", "surveys")
    for column in columns:
        table.add_column(column, justify="right")
    figures = (
        summary.products,
        summary.customers,
        summary.orders,
        summary.order_lines,
        history.conversations,
        history.surveys,
    )
    table.add_row(*(f"{n:,}" for n in figures))
    console.print(table)
    with console.status("Analytics refresh: a week ago and now…"):
        run_refresh(services, as_of=as_of - timedelta(days=7))
        refresh = run_refresh(services, as_of=as_of)
    console.print(
        f"Analytics: {refresh.customers:,} customers scored into {len(refresh.segments)} "
        f"segments and {len(refresh.clusters)} behavioural clusters "
        f"({'; '.join(f'“{name}”' for name in refresh.clusters)}); CLV model "
        f"{'fitted' if refresh.clv_fitted else 'not fitted'} in {refresh.seconds:.1f} s."
    )
    console.rule("Conversations")
    play_script(services, senders, console)
    console.rule("Offers")
    send_demo_offers(services, console, as_of=as_of)
    console.rule("Staff")
    play_script(services, senders, console, STAFF_SCRIPT)
    console.rule("Digest")
    chart = settings.data_dir / "demo-digest.png"
    with session_scope(services.session_factory) as session:
        digest = build_digest(services, session, period="week", until=as_of)
    chart.write_bytes(digest.chart_png)
    console.print(digest.text, markup=False, highlight=False)
    console.print(f"\nThe digest chart is saved to [bold]{chart}[/].")
    console.rule()
    console.print(
        f"Done in {time.perf_counter() - started:.1f} s. Try it yourself: "
        "[bold]crmbot chat --demo[/] (or [bold]crmbot chat --demo --staff[/])."
    )


def send_demo_offers(services: Services, console: Console, *, as_of: datetime) -> None:
    """Plan the offers as the daily job does, then "send" them here as the bot would."""
    outcome = run_job(services, "offer_campaigns", scheduled_for=as_of)
    counts = outcome.report.counts if outcome.report else {}
    planned = {k: v for k, v in counts.items() if "." in k}
    console.print(
        "Offer run (the daily job): "
        + (", ".join(f"{k} {v}" for k, v in sorted(planned.items())) or "nothing planned"),
        highlight=False,
    )
    with session_scope(services.session_factory) as session:
        sends = queued_sends(session, as_of, max_age=timedelta(days=1))
        for send in sends:
            customer = session.get(Customer, send.customer_id)
            name = customer.display_name if customer else send.customer_id
            console.print(f"[bold green]bot → {name}:[/] ", end="")
            console.print(send.reply.text, markup=False, highlight=False)
            mark_sent(session, send.delivery_id, as_of)
    console.print(
        f"{len(sends)} offers sent to customers who allowed offers (the running bot paces "
        "them to 1 message/s per chat and 25/s overall); the holdout gets none.",
        highlight=False,
    )
