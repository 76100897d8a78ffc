"""Logging set-up: levels, and filters that keep the bot token and personal data out of logs.

httpx logs each request URL at INFO, and Bot API URLs contain the token
(``.../bot<TOKEN>/getUpdates``). The httpx and httpcore loggers are raised to WARNING, and
a filter on every handler replaces any token it sees, including in exception tracebacks.

Personal data: log calls carry ids and intents only, never message texts or names (held by
``tests/test_pii_logs.py``). As a second line of defence :class:`RedactPIIFilter` masks
e-mail addresses and phone numbers in every record, and python-telegram-bot's DEBUG output
(which dumps whole updates) is capped at INFO. ``CRMBOT_LOG_PII=true`` turns both off, for
debugging only.
"""

from __future__ import annotations

import logging
import re

TOKEN_RE = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")
REDACTED = "<redacted-token>"


class _CleaningFilter(logging.Filter):
    """Rewrites a record's message and exception text with ``_clean``."""

    def _clean(self, text: str) -> str:
        raise NotImplementedError

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            record.exc_text = self._clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True


class RedactTokenFilter(_CleaningFilter):
    """Replaces bot tokens in the formatted message and the exception text."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return TOKEN_RE.sub(REDACTED, text)


EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
IPV4_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
PHONE_RE = re.compile(r"(?<![\w.:/-])\+?\(?\d[\d ().-]{7,}\d(?![\w:])")
ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
PII_LOGGERS = ("telegram", "sqlalchemy.engine")  # log payloads / SQL parameters at DEBUG


class RedactPIIFilter(_CleaningFilter):
    """Masks e-mail addresses and phone-like digit runs (8+ digits with separators).

    Ids in log lines are shorter or unseparated and stay readable: a run must contain a
    separator or a leading ``+`` to count as a phone number.
    """

    def _clean(self, text: str) -> str:
        text = EMAIL_RE.sub("<email>", text)
        return PHONE_RE.sub(self._phone, text)

    @staticmethod
    def _phone(match: re.Match[str]) -> str:
        raw = match.group(0)
        if raw.isdigit() or ISO_DATE_RE.fullmatch(raw) or IPV4_RE.fullmatch(raw):
            return raw
        return "<phone>"


class TransientTelegramFilter(logging.Filter):
    """python-telegram-bot logs a proxy's HTML error page (a 502) with a stack trace
    before raising the NetworkError that is then retried: keep one short warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and "invalid JSON data" in record.getMessage():
            record.msg = "Telegram answered with a non-JSON page (a proxy error); retrying"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.WARNING
            record.levelname = "WARNING"
        return True


def setup_logging(
    level: str = "INFO", *, secrets: tuple[str, ...] = (), log_pii: bool = False
) -> None:
    """Configure the root logger once; safe to call again (handlers are replaced).

    ``log_pii`` (``CRMBOT_LOG_PII``) switches off the personal-data safeguards: debug only.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokenFilter(secrets))
    if not log_pii:
        handler.addFilter(RedactPIIFilter())
    root.addHandler(handler)
    root.setLevel(level)
    if not log_pii:  # raise, never lower: these dump updates or SQL parameters at DEBUG
        for name in PII_LOGGERS:
            logger = logging.getLogger(name)
            logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))
    logging.getLogger("telegram.request.BaseRequest").addFilter(TransientTelegramFilter())
    for noisy in ("httpx", "httpcore", "apscheduler", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
