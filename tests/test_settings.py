"""Settings: names external tools rely on, clear errors, and a token that never shows."""

from __future__ import annotations

import pytest

from bot.logs import REDACTED, RedactTokenFilter
from bot.settings import SettingsError, load_settings

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in (
        "DATABASE_URL",
        "TELEGRAM_TOKEN",
        "STAFF_IDS",
        "STAFF_CHAT_ID",
        "TIMEZONE",
        "TELEGRAM_API_URL",
        "TELEGRAM_FILE_URL",
        "ADMIN_IDS",
        "MODEL_PATH",
    ):
        monkeypatch.delenv(f"CRMBOT_{name}", raising=False)


def test_reads_the_documented_variables(monkeypatch):
    monkeypatch.setenv("CRMBOT_DATABASE_URL", "postgresql://u:secret@db/crm")
    monkeypatch.setenv("CRMBOT_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("CRMBOT_TELEGRAM_API_URL", "http://127.0.0.1:8081/bot")
    monkeypatch.setenv("CRMBOT_TELEGRAM_FILE_URL", "http://127.0.0.1:8081/file/bot")
    monkeypatch.setenv("CRMBOT_STAFF_IDS", "11, 22")
    monkeypatch.setenv("CRMBOT_STAFF_CHAT_ID", "-1001234")
    monkeypatch.setenv("CRMBOT_TIMEZONE", "Europe/Berlin")
    settings = load_settings()
    assert settings.resolved_database_url == "postgresql://u:secret@db/crm"
    assert settings.token() == TOKEN
    assert settings.telegram_api_url == "http://127.0.0.1:8081/bot"
    assert settings.staff_ids == {11, 22} and settings.staff_chat_id == -1001234
    assert str(settings.tz) == "Europe/Berlin"


def test_reads_a_dot_env_file(tmp_path):
    (tmp_path / ".env").write_text("CRMBOT_STAFF_IDS=5\nCRMBOT_TIMEZONE=Asia/Tokyo\n")
    settings = load_settings()
    assert settings.staff_ids == {5} and settings.timezone == "Asia/Tokyo"


def test_default_database_is_sqlite_in_the_data_folder():
    assert load_settings().resolved_database_url == "sqlite:///data/crmbot.sqlite3"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STAFF_IDS", "12,abc"),
        ("TIMEZONE", "Mars/Olympus"),
        ("STAFF_CHAT_ID", "chat"),
        ("TELEGRAM_TOKEN", "not-a-token"),
        ("TELEGRAM_API_URL", "ftp://x"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(f"CRMBOT_{name}", value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert f"CRMBOT_{name}" in str(info.value)
    assert value not in str(info.value) or name != "TELEGRAM_TOKEN"


def test_token_never_in_repr_or_masked_view(monkeypatch):
    monkeypatch.setenv("CRMBOT_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("CRMBOT_DATABASE_URL", "postgresql://u:hunter2@db/crm")
    settings = load_settings()
    shown = repr(settings) + str(settings.masked())
    assert TOKEN not in shown and "hunter2" not in shown


def test_missing_token_is_a_clear_error():
    with pytest.raises(SettingsError, match="CRMBOT_TELEGRAM_TOKEN"):
        load_settings().token()


def test_log_filter_redacts_tokens_in_messages_and_tracebacks():
    import logging

    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        "POST https://api.telegram.org/bot%s/getUpdates",
        (TOKEN,),
        None,
    )
    try:
        raise RuntimeError(f"failed on /bot{TOKEN}/sendMessage")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    RedactTokenFilter((TOKEN,)).filter(record)
    assert TOKEN not in record.getMessage() and REDACTED in record.getMessage()
    assert TOKEN not in (record.exc_text or "")
