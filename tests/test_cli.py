"""The `crmbot` command line, run as a user runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.fake_telegram.bot_process import TOKEN
from tests.helpers import crmbot


def test_config_show_masks_the_token_and_password(cli_env):
    result = crmbot(
        "config",
        "show",
        env={
            **cli_env,
            "CRMBOT_TELEGRAM_TOKEN": TOKEN,
            "CRMBOT_DATABASE_URL": "postgresql://crm:hunter2@db.internal/crm",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "CRMBOT_TELEGRAM_TOKEN" in result.stdout and "********" in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_bad_setting_stops_with_the_variable_named(cli_env):
    result = crmbot("config", "show", env={**cli_env, "CRMBOT_STAFF_IDS": "12,abc"})
    assert result.returncode == 2
    assert "CRMBOT_STAFF_IDS" in result.stderr


def test_run_without_token_explains_what_to_do(cli_env):
    result = crmbot("run", env=cli_env)
    assert result.returncode == 2
    assert "CRMBOT_TELEGRAM_TOKEN is not set" in result.stderr


def test_db_upgrade_creates_the_schema(cli_env, tmp_path):
    result = crmbot("db", "upgrade", env=cli_env)
    assert result.returncode == 0, result.stderr
    tables = sa.inspect(sa.create_engine(cli_env["CRMBOT_DATABASE_URL"])).get_table_names()
    assert {"customers", "interactions", "orders", "alembic_version"} <= set(tables)
    assert "up to date" in crmbot("db", "current", env=cli_env).stdout


def test_console_chat_as_customer_and_staff(cli_env):
    customer = crmbot("chat", env=cli_env, stdin="hello\nwhere is my order 12345?\n/stats\n")
    assert customer.returncode == 0, customer.stderr
    assert "couldn't find an order 12345" in customer.stdout
    assert "don't know that command" in customer.stdout
    staff = crmbot("chat", "--staff", env=cli_env, stdin="/stats\n/reply 1 Hi, Anna here\n")
    assert "Customers: 1" in staff.stdout and "Customer messages: 3 today" in staff.stdout
    assert "bot → customer chat 100000: Hi, Anna here" in staff.stdout  # not "staff chat"


def test_unknown_subcommand_is_a_usage_error(cli_env):
    result = crmbot("frobnicate", env=cli_env)
    assert result.returncode == 2 and "No such command" in result.stderr


@pytest.mark.slow
def test_demo_builds_the_shop_and_plays_the_script(cli_env, tmp_path):
    result = crmbot("demo", env=cli_env, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2,000" in out and "Conversations" in out
    assert "Your latest order is" in out  # an answer from the customer's own orders
    assert "Handoff #" in out and "✅ Sent to" in out and "resolved" in out
    assert "Customers: 2,000" in out
    engine = sa.create_engine(f"sqlite:///{Path(cli_env['CRMBOT_DATA_DIR']) / 'demo.sqlite3'}")
    with engine.connect() as conn:
        customers = conn.execute(sa.text("SELECT count(*) FROM customers")).scalar()
        orders = conn.execute(sa.text("SELECT count(*) FROM orders")).scalar()
        inbound = conn.execute(
            sa.text("SELECT count(*) FROM interactions WHERE direction = 'in'")
        ).scalar()
        replies = conn.execute(
            sa.text("SELECT DISTINCT text FROM interactions WHERE direction = 'out'")
        ).scalars()
        replies = set(replies)
    assert customers == 2000 and orders > 4000 and inbound >= 15
    # the past chats hold the bot's real answers, written for the customer
    assert "" not in replies and not any("(demo" in text for text in replies)
    assert any(text.startswith("We accept credit and debit cards") for text in replies)
    again = crmbot("demo", env=cli_env, timeout=300)
    assert again.returncode == 0
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM orders")).scalar() == orders, (
            "the demo shop is reproducible from its seed"
        )
