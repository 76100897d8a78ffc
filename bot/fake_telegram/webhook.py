"""Waking the server loop on state changes, and pushing updates to a webhook."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx

from .state import FakeState, Webhook, update_chat
from .update_queue import QueuedUpdate

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class Notifier:
    """An event the server loop can await, fired (from any thread) whenever the state changes.

    Waiters take ``event()`` *before* looking at the state, so a change made between the look and
    the wait still wakes them.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def event(self) -> asyncio.Event:
        """The event the next change will set (call from the loop thread)."""
        return self._event

    def notify_threadsafe(self) -> None:
        """Schedule waking all current waiters; safe from any thread, no-op once closed."""
        if self._loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float) -> None:
        """Wait for ``event`` at most ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


class WebhookDeliverer:
    """Posts pending updates to the webhook as Telegram does: over up to the webhook's
    ``max_connections`` connections at once, each chat's updates one at a time and in order
    (the next only after the previous got a 2xx), retrying a failed one with a growing pause
    while other chats go on."""

    def __init__(
        self,
        state: FakeState,
        notifier: Notifier,
        *,
        retry_delay: float = 0.1,
        max_retry_delay: float = 2.0,
        timeout: float = 5.0,
    ) -> None:
        self.state = state
        self.notifier = notifier
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.timeout = timeout
        self._busy: set[int | None] = set()  # chats with a delivery (or a retry pause) running
        self._delay: dict[int | None, float] = {}

    async def run(self) -> None:
        """Deliver forever (until cancelled)."""
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=100)
        running: set[asyncio.Task[None]] = set()
        client = httpx.AsyncClient(timeout=self.timeout, trust_env=False, limits=limits)
        async with client:
            try:
                while True:
                    event = self.notifier.event()
                    webhook = self.state.webhook
                    room = (webhook.max_connections if webhook else 1) - len(self._busy)
                    jobs = self.state.next_webhook_jobs(busy=self._busy, limit=room)
                    if not jobs:
                        await event.wait()
                        continue
                    for webhook, item in jobs:
                        chat = update_chat(item.update)
                        self._busy.add(chat)
                        task = asyncio.create_task(self._deliver(client, webhook, item, chat))
                        running.add(task)
                        task.add_done_callback(running.discard)
            finally:
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)

    async def _deliver(
        self, client: httpx.AsyncClient, webhook: Webhook, item: QueuedUpdate, chat: int | None
    ) -> None:
        try:
            error = await self._post(client, webhook, item.update)
            self.state.finish_webhook_job(item, error)
            if error is None:
                self._delay.pop(chat, None)
                return
            delay = self._delay.get(chat, self.retry_delay)
            self._delay[chat] = min(delay * 2, self.max_retry_delay)
            await asyncio.sleep(delay)
        finally:
            self._busy.discard(chat)
            self.notifier.notify_threadsafe()

    @staticmethod
    async def _post(client: httpx.AsyncClient, webhook: Webhook, update: dict) -> str | None:
        """POST one update; None on a 2xx answer, else the error as getWebhookInfo shows it."""
        headers = {"Content-Type": "application/json"}
        if webhook.secret_token:
            headers[SECRET_HEADER] = webhook.secret_token
        try:
            response = await client.post(webhook.url, content=json.dumps(update), headers=headers)
        except httpx.TimeoutException:
            return "Read timeout expired"
        except httpx.ConnectError:
            return "Connection refused"
        except httpx.HTTPError as exc:
            return f"Connection error: {exc.__class__.__name__}"
        if 200 <= response.status_code < 300:
            return None
        return f"Wrong response from the webhook: {response.status_code} {response.reason_phrase}"
