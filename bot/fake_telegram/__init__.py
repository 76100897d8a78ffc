"""A fake Telegram Bot API server for end-to-end tests and benchmarks without Telegram.

``FakeTelegramServer`` serves the Bot API on loopback (python-telegram-bot connects to it via
``base_url``) and offers a control API to inject user updates, read what the bot sent and inject
faults. Run ``python -m bot.fake_telegram`` to start one by hand.
"""

from .controller import FakeTelegram
from .errors import ApiError
from .formatting import FormattedText, format_text
from .inject import Sender
from .records import CallRecord, Fault
from .server import FakeTelegramServer

__all__ = [
    "ApiError",
    "CallRecord",
    "FakeTelegram",
    "FakeTelegramServer",
    "Fault",
    "FormattedText",
    "Sender",
    "format_text",
]
