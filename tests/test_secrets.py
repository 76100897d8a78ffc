"""Secrets come from the environment or a secrets file, and are never shown."""

from __future__ import annotations

from bot.settings import load_settings
from tests.helpers import crmbot

TOKEN = "123456:AAE-secret-from-a-file_0123456789"


def test_token_and_database_url_from_a_secrets_folder(tmp_path, monkeypatch):
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "crmbot_telegram_token").write_text(TOKEN)
    (folder / "crmbot_pseudonym_key").write_text("k3y")
    monkeypatch.setenv("CRMBOT_SECRETS_DIR", str(folder))
    monkeypatch.delenv("CRMBOT_TELEGRAM_TOKEN", raising=False)
    monkeypatch.delenv("CRMBOT_PSEUDONYM_KEY", raising=False)
    settings = load_settings(_env_file=None)
    assert settings.token() == TOKEN
    assert settings.pseudonym_key is not None
    assert settings.pseudonym_key.get_secret_value() == "k3y"
    assert TOKEN not in repr(settings) and "k3y" not in repr(settings)


def test_config_show_masks_token_key_and_database_password(cli_env, tmp_path):
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "crmbot_telegram_token").write_text(TOKEN)
    env = {
        **cli_env,
        "CRMBOT_SECRETS_DIR": str(folder),
        "CRMBOT_PSEUDONYM_KEY": "k3y-value",
        "CRMBOT_DATABASE_URL": "postgresql://crm:pa55word@db.example:5432/crm",
    }
    env.pop("CRMBOT_TELEGRAM_TOKEN")
    shown = crmbot("config", "show", env=env)
    assert shown.returncode == 0, shown.stderr
    for secret in (TOKEN, "k3y-value", "pa55word"):
        assert secret not in shown.stdout
    assert "db.example" in shown.stdout
