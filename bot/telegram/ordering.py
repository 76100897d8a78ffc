"""Per-chat order across `crmbot serve` workers.

How a worker handles one webhook request carrying update *u* of chat *c* ("chat" is the
chat the update belongs to — for a button press the chat of its message — else its user):

1. store *u* raw (``inbound_updates``; a redelivery is already there, which is fine);
2. take *c*'s lock: an asyncio lock in this worker, then, on PostgreSQL, the advisory lock on
   *c* (:class:`bot.telegram.advisory.ChatAdvisoryLocks`), held on a dedicated connection;
3. under the lock, process every **unprocessed** stored update of *c* with an update_id up to
   *u*'s, in update_id order — *u* itself and any earlier one whose own request has not got
   the lock yet (or whose worker died) — each marked processed as soon as it is done;
4. release the lock and answer 200. If the update could not be stored or marked (the database
   is down), the answer is an error and Telegram sends the update again later.

**The guarantee.** (a) Updates of one chat are never processed concurrently, in one worker or
across workers. (b) If update *v* of a chat was stored before update *u* of the same chat
was, and *v* has the lower update_id, *v* is processed before *u*, whichever workers receive
them (step 3: *u*'s turn handles *v* first if *v* is still pending). (c) An update is
processed once; a redelivered update that is marked processed only gets its 200 again.

**Why that is Telegram's order.** The Bot API server (tdlib/telegram-bot-api, its
``WebhookActor``) keeps a delivery queue per chat and sends a queue's next update only after
the previous one got a 2xx answer (or was given up after a day of retries). Since a worker
answers only after storing — in fact after processing — every update of a chat is stored
after all earlier ones of its queue were, so (b) yields Telegram's order. Telegram may queue
other kinds of updates of the same chat apart (button presses, for one, concern a user and a
message rather than a chat); for a press and a message arriving at the same moment, (a) still
holds, and (b) orders them by update_id as far as both were stored when the lock was taken.

**Limits.** Earlier pending updates are looked for only among those received in the last
:data:`PENDING_WINDOW` (older leftovers, e.g. of a crashed polling run, are not replayed
into a conversation long after the fact; Telegram redelivers an unanswered update by
itself). If a worker dies in the middle of an update, that update is processed again when it
is redelivered (or reached by a later update of its chat): a customer's message whose answer
was committed then gets its stored replies sent, not a new answer (a reply goes out twice
only if the worker died between Telegram taking it and its sent mark); other updates may be
handled twice — at least once, never lost. "Processed" means the handlers ran, replies
included; a reply that Telegram does not take now stays in the outbox and is sent by the
scheduler's resend loop later, possibly after a later reply. A customer's message caught by
an unreachable database in the middle waits for it and is handled again (answered, or its
replies stored with the answer resumed:
:func:`bot.services.conversation.handle_customer_message`); any other handler failure marks
the update failed, as in polling mode, and it is not tried again. Updates without a chat or
user (none of which the bot handles) are processed without a lock. On SQLite (a single
worker) only the in-process lock exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select
from telegram import Bot, Update
from telegram.ext import Application

from bot.services.context import Services
from bot.telegram.advisory import ChatAdvisoryLocks
from bot.telegram.app import mark_update, record_update
from bot.telegram.chat_order import KeyedLocks, chat_key
from db.clock import utcnow
from db.engine import session_scope
from db.models import InboundUpdate

log = logging.getLogger(__name__)

PENDING_WINDOW = timedelta(minutes=10)


class ChatLocks:
    """A chat's lock: in this worker first (waiting costs no connection), then across
    workers when ``advisory`` is given (PostgreSQL)."""

    def __init__(self, advisory: ChatAdvisoryLocks | None) -> None:
        self.local = KeyedLocks()
        self.advisory = advisory

    @asynccontextmanager
    async def hold(self, chat: int) -> AsyncIterator[None]:
        async with self.local.hold(chat):
            if self.advisory is None:
                yield
            else:
                async with self.advisory.hold(chat):
                    yield

    async def close(self) -> None:
        if self.advisory is not None:
            await self.advisory.close()


def unprocessed_updates(
    *, session: Session, update_id: int, received_since: datetime
) -> list[tuple[int, dict[str, Any]]]:
    """Unprocessed stored updates: this one, and earlier ones received since the given time,
    in update_id order, as (update_id, payload)."""
    rows = session.exec(
        select(InboundUpdate.update_id, InboundUpdate.payload)
        .where(
            col(InboundUpdate.processed_at).is_(None),
            sa.or_(
                col(InboundUpdate.update_id) == update_id,
                sa.and_(
                    col(InboundUpdate.update_id) < update_id,
                    col(InboundUpdate.received_at) >= received_since,
                ),
            ),
        )
        .order_by(col(InboundUpdate.update_id))
    ).all()
    return [(int(row[0]), dict(row[1])) for row in rows]


class OrderedUpdates:
    """Stores and processes webhook updates in chat order; see the module docstring."""

    def __init__(
        self,
        application: Application,  # type: ignore[type-arg]
        services: Services,
        locks: ChatLocks,
    ) -> None:
        self.application = application
        self.services = services
        self.locks = locks
        self.processed = 0

    async def handle(self, update: Update) -> None:
        """Store, then process in chat order. Raises if the database could not record the
        update (the caller answers with an error, so Telegram sends it again)."""
        await record_update(self.services, update)
        chat = chat_key(update)
        if chat is None:
            for item in await asyncio.to_thread(self._pending, None, update):
                await self._process(item)
            return
        async with self.locks.hold(chat):
            for item in await asyncio.to_thread(self._pending, chat, update):
                await self._process(item)

    def _pending(self, chat: int | None, update: Update) -> list[Update]:
        """This update if unprocessed, after the chat's earlier unprocessed ones."""
        with session_scope(self.services.session_factory) as session:
            rows = unprocessed_updates(
                session=session,
                update_id=update.update_id,
                received_since=utcnow() - PENDING_WINDOW,
            )
        pending: list[Update] = []
        bot: Bot = self.application.bot
        for update_id, payload in rows:
            if update_id == update.update_id:
                pending.append(update)
                continue
            if chat is None:
                continue
            earlier = Update.de_json(payload, bot)
            if earlier is not None and chat_key(earlier) == chat:
                log.info(
                    "update %s: earlier update %s of its chat still pending, processed first",
                    update.update_id,
                    update_id,
                )
                pending.append(earlier)
        return pending

    async def _process(self, update: Update) -> None:
        await self.application.process_update(update)  # handler errors go to on_error
        await mark_update(self.services, update.update_id)
        self.processed += 1
