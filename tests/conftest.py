"""Shared fixtures: a trained NLU, databases (SQLite always, PostgreSQL when enabled), and
wired services.

PostgreSQL tests run when ``CRMBOT_TEST_POSTGRES_URL`` is set, e.g.
``postgresql://postgres@127.0.0.1:5432/test``; each test gets its own schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.services.context import Services
from bot.settings import Settings
from bot.wiring import build_services
from nlp import NLU
from nlp.pipeline import load_or_train

POSTGRES_URL = os.environ.get("CRMBOT_TEST_POSTGRES_URL", "")
STAFF_ID = 4242
ADMIN_ID = 4343


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default pipeline trained once per test run from the repo's own examples."""
    cache = tmp_path_factory.mktemp("models")
    load_or_train(cache_dir=cache)
    (path,) = [p for p in cache.iterdir() if p.name.startswith("shop-")]
    return path


@pytest.fixture(scope="session")
def nlu(model_dir: Path) -> NLU:
    return NLU.load(model_dir)


def _postgres_schema_url(schema: str) -> str:
    return f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_postgres_schema() -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL schema, dropped afterwards (skips if disabled)."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests are off: set CRMBOT_TEST_POSTGRES_URL to enable them")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL schema, dropped after the test."""
    with fresh_postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every database test runs on SQLite, and on PostgreSQL when it is enabled."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crmbot.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        data_dir=tmp_path,
        staff_ids=frozenset({STAFF_ID}),
        admin_ids=frozenset({ADMIN_ID}),
        shop_name="Test Shop",
    )


@pytest.fixture
def services(settings: Settings, nlu: NLU) -> Services:
    return build_services(settings, nlu=nlu)


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRES_URL:
        return f"PostgreSQL tests: ON ({POSTGRES_URL.split('@')[-1]})"
    return "PostgreSQL tests: off (set CRMBOT_TEST_POSTGRES_URL to run them)"


@pytest.fixture
def shop(services: Services) -> Services:
    """The services over a small generated shop (300 customers, fixed seed)."""
    from datetime import UTC, datetime

    from bot.demo.shop import generate_shop
    from db.engine import session_scope

    with session_scope(services.session_factory) as session:
        generate_shop(session, seed=7, customers=300, as_of=datetime.now(UTC))
    return services


@pytest.fixture
def cli_env(tmp_path: Path, model_dir: Path) -> dict[str, str]:
    return {
        "CRMBOT_DATA_DIR": str(tmp_path / "data"),
        "CRMBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'crm.sqlite3'}",
        "CRMBOT_MODEL_PATH": str(model_dir),
        "CRMBOT_TELEGRAM_TOKEN": "",
        "CRMBOT_STAFF_IDS": "",
    }
