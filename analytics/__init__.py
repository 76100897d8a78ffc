"""Analytics for crmbot: data in, results out. Pure: no Telegram, no bot, no database."""
