"""`crmbot import ...`: import orders from files, link imported customers to Telegram."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from bot.cli.common import console, err, fail, get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker
    from sqlmodel import Session

    from bot.settings import Settings
    from db.imports import ImportProgress, ImportReport

import_app = typer.Typer(
    help="Import orders from files; link imported customers to their Telegram account.",
    no_args_is_help=True,
)

_DELIMITERS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_COLUMN_HELP = "Header name (or 1-based number) of the {} column; default: found by name."


def _col(what: str) -> typer.models.OptionInfo:
    return typer.Option(help=_COLUMN_HELP.format(what), rich_help_panel="Columns")


@import_app.command("orders")
def import_orders_command(
    file: Annotated[Path, typer.Argument(help="The CSV file (or CDNOW .txt with --format).")],
    file_format: Annotated[
        str, typer.Option("--format", help="csv, or cdnow for CDNOW purchase logs.")
    ] = "csv",
    customer_col: Annotated[str | None, _col("customer id")] = None,
    order_col: Annotated[str | None, _col("order id")] = None,
    date_col: Annotated[str | None, _col("order date")] = None,
    amount_col: Annotated[str | None, _col("order total")] = None,
    items_col: Annotated[str | None, _col("items (SKU:qty:unit_price;…)")] = None,
    status_col: Annotated[str | None, _col("order status")] = None,
    currency_col: Annotated[str | None, _col("currency")] = None,
    currency: Annotated[str, typer.Option(help="Currency of rows without one.")] = "USD",
    date_format: Annotated[
        str | None,
        typer.Option(help="strptime format, e.g. %d/%m/%Y; default: ISO 8601."),
    ] = None,
    timezone: Annotated[
        str, typer.Option(help="IANA time zone of dates without an offset.")
    ] = "UTC",
    delimiter: Annotated[
        str | None, typer.Option(help="Field separator (',', ';', tab, '|'); default: guessed.")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="File encoding; default: UTF-8, else Windows-1252.")
    ] = None,
    no_header: Annotated[
        bool, typer.Option("--no-header", help="The first line is data; columns by number.")
    ] = False,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Import the good rows even if some are bad.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the whole file; write nothing.")
    ] = False,
    show_bad: Annotated[int, typer.Option(min=0, help="How many bad rows to list.")] = 50,
    chunk_size: Annotated[int, typer.Option(min=1, help="Rows per database batch.")] = 50_000,
) -> None:
    """Import orders from a CSV file: one transaction, all or nothing unless --skip-bad.

    Columns are found by header name (customer_id/customer/client, order_id/order_number,
    date/order_date/created_at, amount/total/value, items, status, currency) or named with
    the --*-col options. Dates: ISO 8601 unless --date-format. Items:
    SKU[:quantity[:unit_price]] separated by ; or | (e.g. A-1:2:9.99;B-7); unknown SKUs
    become products. Customers unknown so far are created with the file's customer id as
    external id. Order ids already in the database are skipped ("already present"); the
    same id with other content is a conflict (a bad row; the stored order is kept).
    --format cdnow reads CDNOW purchase logs; order ids are cdnow-CUSTOMER-YYYYMMDD-N.

    Exit codes: 0 imported (or a clean dry run); 1 bad rows (nothing written) or a
    database error; 2 the file or an option is unusable.
    """
    from db.imports import (
        ColumnNames,
        ImportDatabaseError,
        ImportFileError,
        ImportOptions,
        import_orders,
    )

    settings = get_settings()
    try:
        options = ImportOptions(
            format=file_format.lower(),
            columns=ColumnNames(
                customer=customer_col,
                order=order_col,
                date=date_col,
                amount=amount_col,
                items=items_col,
                status=status_col,
                currency=currency_col,
            ),
            delimiter=_DELIMITERS.get((delimiter or "").lower(), delimiter),
            has_header=not no_header,
            encoding=encoding,
            currency=currency,
            date_format=date_format,
            timezone=timezone,
            skip_bad=skip_bad,
            dry_run=dry_run,
            chunk_size=chunk_size,
            keep_bad_rows=max(show_bad, 1000),
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    factory = _session_factory(settings)
    try:
        with _progress_bar(file.name) as on_progress:
            report = import_orders(
                session_factory=factory, path=file, options=options, on_progress=on_progress
            )
    except ImportFileError as exc:
        raise fail(str(exc), code=2) from None
    except ImportDatabaseError as exc:
        raise fail(str(exc), code=1) from None
    _print_report(report, show_bad=show_bad)
    raise typer.Exit(_exit_code(report))


@import_app.command("link")
def link_command(
    external_id: Annotated[str, typer.Argument(help="The customer id used in imported orders.")],
    telegram_user_id: Annotated[int, typer.Argument(help="The customer's Telegram user id.")],
) -> None:
    """Link an imported customer to a Telegram user, merging the customer row the chat made.

    The chat customer's conversations, messages, orders and surveys move to the imported
    customer, which keeps its id; the chat customer row is deleted. One transaction.
    """
    from db.engine import session_scope
    from db.imports import LinkError, link_customer

    factory = _session_factory(get_settings())
    try:
        with session_scope(factory) as session:
            result = link_customer(
                session=session, external_id=external_id, telegram_user_id=telegram_user_id
            )
    except LinkError as exc:
        raise fail(str(exc), code=1) from None
    if result.already_linked:
        console.print(f"Customer {external_id} is already linked to {telegram_user_id}.")
    elif result.merged_customer_id is None:
        console.print(f"Linked customer {external_id} to Telegram user {telegram_user_id}.")
    else:
        moved = ", ".join(f"{n} {table}" for table, n in result.moved.items()) or "nothing"
        console.print(
            f"Linked customer {external_id} to Telegram user {telegram_user_id}: merged "
            f"customer #{result.merged_customer_id} into #{result.customer_id} "
            f"(moved {moved}).",
            highlight=False,
        )


@import_app.command("offer-codes")
def offer_codes_command(
    file: Annotated[Path, typer.Argument(help="CSV with the columns order and code.")],
) -> None:
    """Put offer codes on imported orders (a coupon report: order id, code), then record the
    offer redemptions they make. Bad rows are listed with their line; the good ones count."""
    import csv

    from bot.services.offers.redemption import attach_offer_codes
    from db.clock import utcnow
    from db.engine import session_scope

    if not file.is_file():
        raise fail(f"{file}: no such file")
    with file.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        names = {(n or "").strip().lower(): n for n in reader.fieldnames or []}
        order_col = names.get("order") or names.get("order_id")
        code_col = names.get("code") or names.get("offer_code")
        if order_col is None or code_col is None:
            raise fail(f"{file}: needs a header with the columns order and code")
        rows = [
            (reader.line_num, row.get(order_col) or "", row.get(code_col) or "") for row in reader
        ]
    factory = _session_factory(get_settings())
    with session_scope(factory) as session:
        result = attach_offer_codes(session, rows, now=utcnow())
    for line, reason in result.bad[:20]:
        err.print(f"line {line}: {reason}", highlight=False)
    console.print(
        f"{result.updated:,} orders got their offer code; {result.redeemed:,} offer "
        f"redemptions recorded; {len(result.bad):,} bad rows.",
        highlight=False,
    )
    if result.bad:
        raise typer.Exit(1)


# --- helpers -----------------------------------------------------------------------------


def _session_factory(settings: Settings) -> sessionmaker[Session]:
    """A session factory on the configured database, migrated to the newest schema."""
    from db import migrate
    from db.engine import make_engine, make_session_factory

    engine = make_engine(settings.resolved_database_url)
    if not migrate.is_up_to_date(engine):
        migrate.upgrade(engine)
    return make_session_factory(engine)


@contextmanager
def _progress_bar(name: str) -> Iterator[Callable[[ImportProgress], None]]:
    """The callback that drives a Rich progress bar on stderr, shown from its first call."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:>12,} rows"),
        TextColumn("{task.fields[bad]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    )
    task = progress.add_task(f"Importing {name}", total=None, rows=0, bad="")

    def update(state: ImportProgress) -> None:
        if not progress.live.is_started:
            progress.start()
        bad = f"[red]{state.bad_rows:,} bad[/]" if state.bad_rows else ""
        progress.update(
            task,
            total=max(state.bytes_total, 1),
            completed=state.bytes_read,
            rows=state.rows_read,
            bad=bad,
        )

    try:
        yield update
    finally:
        if progress.live.is_started:
            progress.stop()


def _print_report(report: ImportReport, *, show_bad: int) -> None:
    for note in report.notes:
        err.print(f"[yellow]Note:[/] {note}", highlight=False)
    console.print(_summary_table(report))
    if report.bad_row_count and show_bad:
        console.print(_bad_rows_table(report, limit=show_bad))
        rest = report.bad_row_count - min(show_bad, len(report.bad_rows))
        if rest > 0:
            console.print(f"… and {rest:,} more bad rows.")
    console.print(_verdict(report), highlight=False)


def _summary_table(report: ImportReport) -> Table:
    table = Table(title=f"Import of {report.path.name}", title_justify="left")
    table.add_column("", style="bold")
    table.add_column("count", justify="right")
    rows = [
        ("rows read", f"{report.rows_read:,}"),
        ("imported orders", f"{report.orders_imported:,}"),
        ("new customers", f"{report.customers_created:,}"),
        ("new products", f"{report.products_created:,}"),
        ("order lines", f"{report.order_lines:,}"),
        ("skipped: already present", f"{report.already_present:,}"),
        ("skipped: repeated in file", f"{report.duplicates_in_file:,}"),
        ("bad rows", f"{report.bad_row_count:,}"),
        ("  of which conflicts", f"{report.conflicts:,}"),
        ("seconds", f"{report.seconds:,.2f}"),
        ("rows/s", f"{report.rows_per_second:,.0f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _bad_rows_table(report: ImportReport, *, limit: int) -> Table:
    table = Table(title="Bad rows", title_justify="left")
    table.add_column("line", justify="right")
    table.add_column("reason", overflow="fold")
    for bad in report.bad_rows[:limit]:
        table.add_row(f"{bad.line:,}", bad.reason)
    return table


def _verdict(report: ImportReport) -> str:
    bad = f"{report.bad_row_count:,} bad row{'s' if report.bad_row_count != 1 else ''}"
    if report.dry_run:
        found = f"found {bad}" if report.bad_row_count else "no bad rows"
        return f"Dry run: nothing was written ({found})."
    if report.committed:
        skipped = f"; skipped {bad}" if report.bad_row_count else ""
        return f"[green]Imported {report.orders_imported:,} orders{skipped}.[/]"
    return (
        f"[red]Nothing was written:[/] {bad}. Fix them, or use --skip-bad to import the good rows."
    )


def _exit_code(report: ImportReport) -> int:
    if report.committed or (report.dry_run and not report.bad_row_count):
        return 0
    return 1
