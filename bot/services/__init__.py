"""Use cases of crmbot. They know nothing of Telegram: channels hand them neutral messages
(:mod:`bot.services.messages`) and send the replies they return."""
