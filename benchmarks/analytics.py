"""Analytics at scale: import, RFM aggregation, the whole refresh, CDNOW, BG/NBD.

    python benchmarks/analytics.py [--customers 1000000 --orders 10000000] [--data ../shared/data]

Generates a synthetic shop with a fixed seed and realistic skew (most customers buy once or
twice, a few buy often; order values are log-normal), imports it into a fresh SQLite file
with `crmbot import orders`'s code, then measures in the same run:

- the import (rows/s);
- RFM aggregation in SQLite against a plain pandas groupby on the same data;
- the whole refresh on all customers (RFM, segments, clusters, satisfaction, CLV), in a
  subprocess so that its peak RSS is its own;
- the whole refresh on the real CDNOW master file (23,570 customers);
- the BG/NBD fit on the CDNOW sample summary, with its parameters against the published ones.

Needs pandas and psutil (`pip install pandas psutil`) for the anchor and the memory figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

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


def pandas_rfm(path: Path) -> float:
    import pandas as pd

    frame = pd.read_csv(path, usecols=["customer_id", "date", "amount"])
    frame["date"] = pd.to_datetime(frame["date"], utc=True)
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


def import_file(database_url: str, path: Path, *, fmt: str = "csv") -> float:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    report = import_orders(
        session_factory=make_session_factory(engine), path=path, options=ImportOptions(format=fmt)
    )
    if not report.committed:
        raise SystemExit(f"import of {path} failed: {report.bad_rows[:3]}")
    return report.rows_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    console = Console()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="crmbot-analytics-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str]] = []

    csv_path = work / f"orders-{args.customers}-{args.orders}.csv"
    if not csv_path.exists():
        with console.status(f"generating {args.orders:,} orders"):
            generate(csv_path, customers=args.customers, orders=args.orders)
    db_path = work / "bench.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{db_path}"
    with console.status("importing into SQLite"):
        rate = import_file(url, csv_path)
    rows.append(
        (
            f"import of {args.orders:,} orders into SQLite",
            f"{rate:,.0f} rows/s",
            "≥ 200,000 rows/s",
        )
    )

    factory = make_session_factory(make_engine(url))
    with console.status("RFM aggregation"), factory() as session:
        started = time.perf_counter()
        aggregates = order_aggregates(session=session, as_of=AS_OF)
        sql_seconds = time.perf_counter() - started
    with console.status("pandas anchor"):
        pandas_seconds = pandas_rfm(csv_path)
    rows.append(
        (
            f"RFM aggregation on {args.orders:,} orders ({len(aggregates):,} customers)",
            f"SQLite {sql_seconds:.1f} s, pandas {pandas_seconds:.1f} s "
            f"(× {sql_seconds / pandas_seconds:.1f})",
            "≤ 3 × pandas",
        )
    )

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
    if master.exists():
        cdnow_url = f"sqlite:///{work / 'cdnow.sqlite3'}"
        (work / "cdnow.sqlite3").unlink(missing_ok=True)
        import_file(cdnow_url, master, fmt="cdnow")
        cdnow = refresh_in_subprocess(cdnow_url, datetime(1998, 7, 1, tzinfo=UTC))
        rows.append(
            (
                f"whole refresh on CDNOW master ({cdnow['customers']:,} customers)",
                f"{cdnow['seconds']:.2f} s",
                "≤ 5 s",
            )
        )
    else:
        console.print(f"[yellow]{master} not found: CDNOW rows skipped (pass --data)[/]")

    summary = args.data / "cdnow" / "cdnow_customers_summary.csv"
    if summary.exists():
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
