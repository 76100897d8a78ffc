"""Waking the server loop on state changes, and pushing updates to a webhook."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx

from .state import FakeState, Webhook

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
    """Posts pending updates to the webhook one at a time, in order, retrying until a 2xx."""

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

    async def run(self) -> None:
        """Deliver forever (until cancelled)."""
        delay = self.retry_delay
        async with httpx.AsyncClient(timeout=self.timeout, trust_env=False) as client:
            while True:
                event = self.notifier.event()
                job = self.state.next_webhook_job()
                if job is None:
                    await event.wait()
                    continue
                webhook, item = job
                error = await self._post(client, webhook, item.update)
                self.state.finish_webhook_job(item, error)
                if error is None:
                    delay = self.retry_delay
                    continue
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)

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
