"""Analytics at scale: import, RFM aggregation, the whole refresh, CDNOW, BG/NBD.

    python benchmarks/analytics.py [--customers 1000000 --orders 10000000] [--data ../shared/data]

Generates a synthetic shop with a fixed seed and realistic skew (most customers buy once or
twice, a few buy often; order values are log-normal), imports it into a fresh SQLite file
with `crmbot import orders`'s code, then measures in the same run:

- the import (rows/s, wall clock, from opening the file to the commit and the rebuilt
  indexes; the CPU seconds of the process are shown too, since a busy machine stretches
  the wall clock);
- RFM aggregation: ``order_aggregates`` exactly as the nightly refresh calls it (one SQL
  ``GROUP BY customer_id`` in SQLite over all orders, results into numpy arrays) against a
  plain pandas groupby computing the same four figures from a DataFrame already in memory
  (reading the CSV is not timed); best of three runs of each, interleaved;
- the whole refresh on all customers (RFM, segments, clusters, satisfaction, CLV), in a
  subprocess so that its peak RSS is its own;
- the whole refresh on the real CDNOW master file (23,570 customers);
- the BG/NBD fit on the CDNOW sample summary, with its parameters against the published ones.

Needs pandas and psutil (`pip install pandas psutil`) for the anchor and the memory figure.
`--only import,rfm` runs some rows only (the import always runs unless the database of an
earlier run is reused with `--reuse`); `--orders`/`--customers` make a smaller shop.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.clv import fit_bgnbd  # noqa: E402
from bot.settings import Settings  # noqa: E402
from db import migrate  # noqa: E402
from db.analytics_queries import order_aggregates  # noqa: E402
from db.engine import make_engine, make_session_factory  # noqa: E402
from db.imports import ImportOptions, import_orders  # noqa: E402

PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
START = np.datetime64("2023-01-01T00:00:00")
SPAN_SECONDS = 3 * 365 * 86400
AS_OF = datetime(2026, 1, 1, tzinfo=UTC)


def generate(path: Path, *, customers: int, orders: int, seed: int = 7) -> None:
    """A CSV of ``orders`` orders by ``customers`` customers, skewed like real shops."""
    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.2, customers) + 1.0  # heavy tail: a few very frequent buyers
    counts = 1 + rng.multinomial(orders - customers, weights / weights.sum())
    owner = np.repeat(np.arange(1, customers + 1), counts)
    first = rng.integers(0, SPAN_SECONDS, customers)
    offsets = first[owner - 1] + rng.exponential(90 * 86400, orders).astype(np.int64)
    seconds = np.minimum(offsets, SPAN_SECONDS - 1)
    amounts = np.round(rng.lognormal(3.8, 0.7, orders), 2)
    stamps = (START + seconds.astype("timedelta64[s]")).astype(str)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("customer_id,order_id,date,amount\n")
        step = 1_000_000
        for start in range(0, orders, step):
            stop = min(orders, start + step)
            lines = [
                f"C{c},O{n},{d}Z,{a:.2f}\n"
                for c, n, d, a in zip(
                    owner[start:stop].tolist(),
                    range(start + 1, stop + 1),
                    stamps[start:stop].tolist(),
                    amounts[start:stop].tolist(),
                    strict=True,
                )
            ]
            handle.writelines(lines)


ROWS = ("import", "rfm", "refresh", "cdnow", "bgnbd")
TIMINGS = 3  # the RFM row takes the best of this many runs of each side


def load_frame(path: Path) -> Any:
    import pandas as pd

    frame = pd.read_csv(path, usecols=["customer_id", "date", "amount"])
    frame["date"] = pd.to_datetime(frame["date"], utc=True)
    return frame


def pandas_rfm(frame: Any) -> float:
    """Seconds for recency, tenure, frequency and monetary per customer with pandas."""
    import pandas as pd

    started = time.perf_counter()
    as_of = pd.Timestamp(AS_OF)
    frame = frame[frame["date"] < as_of]
    grouped = frame.groupby("customer_id").agg(
        last=("date", "max"), first=("date", "min"), n=("amount", "size"), total=("amount", "sum")
    )
    _ = (as_of - grouped["last"]).dt.days, (as_of - grouped["first"]).dt.days
    return time.perf_counter() - started


def refresh_in_subprocess(database_url: str, as_of: datetime) -> dict[str, float]:
    """Run the whole refresh in a fresh process; seconds and its peak RSS."""
    code = f"""
import json, resource, time
from datetime import datetime
from bot.settings import Settings
from bot.services.refresh import run_refresh
from bot.wiring import build_services
services = build_services(Settings(_env_file=None, database_url={database_url!r}))
started = time.perf_counter()
result = run_refresh(services, as_of=datetime.fromisoformat({as_of.isoformat()!r}))
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": seconds, "peak_mb": peak, "customers": result.customers,
                  "steps": result.step_seconds}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "CRMBOT_LOG_LEVEL": "WARNING"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def import_file(database_url: str, path: Path, *, fmt: str = "csv") -> tuple[float, float]:
    """Import ``path``; rows per second and the CPU seconds the process used."""
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    cpu = time.process_time()
    report = import_orders(
        session_factory=make_session_factory(engine), path=path, options=ImportOptions(format=fmt)
    )
    cpu = time.process_time() - cpu
    engine.dispose()
    if not report.committed:
        raise SystemExit(f"import of {path} failed: {report.bad_rows[:3]}")
    return report.rows_per_second, cpu


def sql_rfm(database_url: str) -> tuple[float, int]:
    """Seconds for ``order_aggregates`` as the refresh calls it, and the customer count."""
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        started = time.perf_counter()
        aggregates = order_aggregates(session=session, as_of=AS_OF)
        seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, len(aggregates)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--only", default=",".join(ROWS), help=f"rows to measure, of {','.join(ROWS)}"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database of an earlier run (no import)"
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    if only - set(ROWS):
        parser.error(f"unknown rows: {', '.join(sorted(only - set(ROWS)))}")
    console = Console()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="crmbot-analytics-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str]] = []
    console.print(f"start: {load()} on {os.cpu_count()} cores")

    csv_path = work / f"orders-{args.customers}-{args.orders}.csv"
    if not csv_path.exists():
        with console.status(f"generating {args.orders:,} orders"):
            generate(csv_path, customers=args.customers, orders=args.orders)
    db_path = work / f"bench-{args.customers}-{args.orders}.sqlite3"
    url = f"sqlite:///{db_path}"
    if not (args.reuse and db_path.exists()):
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        with console.status("importing into SQLite"):
            rate, cpu = import_file(url, csv_path)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this process so far
        rows.append(
            (
                f"import of {args.orders:,} orders into SQLite",
                f"{rate:,.0f} rows/s (CPU {cpu:.0f} s, peak RSS {peak:,.0f} MB; {load()})",
                "≥ 200,000 rows/s",
            )
        )

    if "rfm" in only:
        with console.status("RFM aggregation: SQL and pandas"):
            frame = load_frame(csv_path)
            sql_runs, pandas_runs = [], []
            for _ in range(TIMINGS):
                seconds, customers = sql_rfm(url)
                sql_runs.append(seconds)
                pandas_runs.append(pandas_rfm(frame))
            del frame
        sql_seconds, pandas_seconds = min(sql_runs), min(pandas_runs)
        rows.append(
            (
                f"RFM aggregation on {args.orders:,} orders ({customers:,} customers)",
                f"SQLite {sql_seconds:.2f} s, pandas {pandas_seconds:.2f} s "
                f"(× {sql_seconds / pandas_seconds:.1f}; best of {TIMINGS}; {load()})",
                "≤ 3 × pandas",
            )
        )

    if "refresh" in only:
        with console.status("whole refresh"):
            refresh = refresh_in_subprocess(url, AS_OF)
        steps = ", ".join(f"{k} {v:.1f}" for k, v in refresh["steps"].items())
        rows.append(
            (
                f"whole refresh on {refresh['customers']:,} customers",
                f"{refresh['seconds']:.1f} s, peak RSS {refresh['peak_mb']:,.0f} MB ({steps})",
                "≤ 60 s, ≤ 4 GB",
            )
        )

    master = args.data / "cdnow" / "CDNOW_master.txt"
    if "cdnow" in only and master.exists():
        cdnow_url = f"sqlite:///{work / 'cdnow.sqlite3'}"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{work / 'cdnow.sqlite3'}{suffix}").unlink(missing_ok=True)
        import_file(cdnow_url, master, fmt="cdnow")
        cdnow = refresh_in_subprocess(cdnow_url, datetime(1998, 7, 1, tzinfo=UTC))
        rows.append(
            (
                f"whole refresh on CDNOW master ({cdnow['customers']:,} customers)",
                f"{cdnow['seconds']:.2f} s",
                "≤ 5 s",
            )
        )
    elif "cdnow" in only:
        console.print(f"[yellow]{master} not found: CDNOW rows skipped (pass --data)[/]")

    summary = args.data / "cdnow" / "cdnow_customers_summary.csv"
    if "bgnbd" in only and summary.exists():
        with summary.open(newline="") as handle:
            table = list(csv.DictReader(handle))
        columns = {
            k: np.array([float(r[k]) for r in table]) for k in ("frequency", "recency", "T")
        }
        started = time.perf_counter()
        params = fit_bgnbd(columns["frequency"], columns["recency"], columns["T"])
        seconds = time.perf_counter() - started
        worst = max(abs(getattr(params, k) / v - 1) for k, v in PUBLISHED.items())
        rows.append(
            (
                "BG/NBD fit on the CDNOW sample summary",
                f"{seconds * 1000:.0f} ms; r={params.r:.3f} α={params.alpha:.3f} "
                f"a={params.a:.3f} b={params.b:.3f} (max deviation {worst:.2%})",
                "≤ 1 s, within 1 %",
            )
        )

    result = Table(title="crmbot analytics benchmark")
    for column in ("row", "measured", "target"):
        result.add_column(column)
    for row in rows:
        result.add_row(*row)
    console.print(result)
    _ = Settings  # settings are read by the subprocess


if __name__ == "__main__":
    main()
