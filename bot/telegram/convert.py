"""Turn Telegram updates into neutral messages, and neutral replies into Telegram markup."""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from bot.services.messages import Button, IncomingMessage, Sender
from db.models import InteractionKind


def update_kind(update: Update) -> str:
    """The update's payload field: message, edited_message, callback_query, channel_post..."""
    fields = [k for k in update.to_dict() if k != "update_id"]
    return fields[0] if fields else "unknown"


def _media(message: Message) -> tuple[str, dict[str, Any] | None]:
    if message.sticker:
        s = message.sticker
        return InteractionKind.STICKER, {
            "file_id": s.file_id,
            "emoji": s.emoji,
            "set_name": s.set_name,
        }
    if message.photo:
        p = message.photo[-1]
        return InteractionKind.PHOTO, {"file_id": p.file_id, "width": p.width, "height": p.height}
    if message.voice:
        return InteractionKind.VOICE, {
            "file_id": message.voice.file_id,
            "duration": message.voice.duration,
        }
    if message.video:
        return InteractionKind.VIDEO, {"file_id": message.video.file_id}
    if message.audio:
        return InteractionKind.AUDIO, {"file_id": message.audio.file_id}
    if message.document:
        d = message.document
        return InteractionKind.DOCUMENT, {
            "file_id": d.file_id,
            "file_name": d.file_name,
            "mime_type": d.mime_type,
        }
    if message.location:
        loc = message.location
        return InteractionKind.LOCATION, {"latitude": loc.latitude, "longitude": loc.longitude}
    if message.contact:
        c = message.contact
        return InteractionKind.CONTACT, {
            "phone_number": c.phone_number,
            "first_name": c.first_name,
            "user_id": c.user_id,
        }
    return InteractionKind.OTHER, None


def to_incoming(update: Update) -> IncomingMessage | None:
    """A neutral message for a message or an edit from a user; None for anything else."""
    message = update.message or update.edited_message
    user = update.effective_user
    if message is None or user is None or user.is_bot:
        return None
    if message.text is not None:
        kind: str = InteractionKind.TEXT
        attachment = None
        text = message.text
    else:
        kind, attachment = _media(message)
        text = message.caption or ""
    if update.edited_message is not None:
        attachment = {
            **(attachment or {}),
            "edited_kind": kind,
            "edit_date": message.edit_date.isoformat() if message.edit_date else None,
        }
        kind = InteractionKind.EDITED
    return IncomingMessage(
        sender=Sender(
            user_id=user.id,
            chat_id=message.chat_id,
            first_name=user.first_name,
            last_name=user.last_name,
            username=user.username,
            language_code=user.language_code,
        ),
        text=text,
        channel="telegram",
        kind=kind,
        attachment=attachment,
        update_id=update.update_id,
        message_id=message.message_id,
        sent_at=message.date,
        reply_to_text=_bot_text(message.reply_to_message),
    )


def _bot_text(replied: Message | None) -> str | None:
    """The text of the message replied to, if the bot wrote it (a staff reply to a card)."""
    if replied is None or replied.from_user is None or not replied.from_user.is_bot:
        return None
    return replied.text or replied.caption


def keyboard(buttons: list[list[Button]]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in buttons]
    )
