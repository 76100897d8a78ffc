"""The Telegram channel: python-telegram-bot adapters around the neutral services."""
