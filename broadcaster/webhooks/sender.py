"""One task per node that POSTs decided webhooks, signed, retried with capped backoff.

Any answer but a 2xx, a timeout or a refused connection is retried: after 1 s, then twice as
long each time (at most :data:`MAX_BACKOFF`), for :data:`RETRY_FOR` seconds, then given up on
with a log line and counted. Deliveries go one after another, in ``time_ms`` order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

import httpx

from shared.signatures import sign_webhook

from ..config import AppConfig, Webhook
from .base import WebhookEvent, WebhookQueue, webhook_body

logger = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds for one POST
RETRY_FOR = 300.0  # seconds a webhook is retried before it is given up on (Pusher: 5 minutes)
MAX_BACKOFF = 30.0  # seconds between two tries at most
BATCH = 50  # events in one request, with batching on
BATCH_WINDOW = 0.05  # seconds a batch waits for more events


class WebhookSender:
    """Drains ``queue`` to each app's webhook URLs; ``apps`` by id."""

    def __init__(self, queue: WebhookQueue, apps: Mapping[str, AppConfig],
                 timeout: float = TIMEOUT, retry_for: float = RETRY_FOR) -> None:
        self.queue, self.apps = queue, apps
        self.timeout, self.retry_for = timeout, retry_for
        self.delivered = self.failed = 0  # requests answered 2xx; given up on

    async def run(self) -> None:
        """Deliver forever."""
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            while True:
                try:
                    events = await self.queue.pop(1)
                except Exception as error:  # Redis away: the events wait there
                    logger.warning("cannot read the webhook queue: %r; retrying in 1 s", error)
                    await asyncio.sleep(1.0)
                    continue
                app = self.apps.get(events[0].app_id)
                if app is not None and app.webhook_batching:
                    await asyncio.sleep(BATCH_WINDOW)
                    events += await self.queue.pop(BATCH - 1, wait=False)
                try:
                    for app_id in dict.fromkeys(event.app_id for event in events):
                        await self._deliver_app(client, app_id,
                                                [e for e in events if e.app_id == app_id])
                except Exception:
                    self.failed += 1
                    logger.exception("%d webhook events could not be sent; dropped", len(events))
                await self.queue.done(events)

    async def _deliver_app(self, client: httpx.AsyncClient, app_id: str,
                           events: list[WebhookEvent]) -> None:
        app = self.apps.get(app_id)
        if app is None:
            return
        for target in app.webhooks:
            wanted = [event for event in events if target.wants(event.name, event.channel)]
            if wanted:
                await self._post(client, app, target, wanted)

    async def _post(self, client: httpx.AsyncClient, app: AppConfig, target: Webhook,
                    events: list[WebhookEvent]) -> None:
        body = webhook_body(events)
        headers = {**dict(target.headers), "Content-Type": "application/json",
                   "X-Pusher-Key": app.key,
                   "X-Pusher-Signature": sign_webhook(app.secret, body)}
        deadline, backoff = time.monotonic() + self.retry_for, 1.0
        while True:
            try:
                response = await client.post(target.url, content=body, headers=headers)
                if response.is_success:
                    self.delivered += 1
                    return
                problem = f"answered {response.status_code}"
            except httpx.HTTPError as error:
                problem = f"failed: {error!r}"
            if time.monotonic() + backoff > deadline:
                self.failed += 1
                logger.error("webhook to %s %s; gave up after %.0f s (%d events lost)",
                             target.url, problem, self.retry_for, len(events))
                return
            logger.warning("webhook to %s %s; retrying in %.0f s", target.url, problem, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)


class Webhooks:
    """A node's webhooks: the queue's decision task and the sender's task, started together."""

    def __init__(self, queue: WebhookQueue, sender: WebhookSender) -> None:
        self.queue, self.sender = queue, sender
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.queue.start()
        self._tasks = [asyncio.create_task(self.queue.run()),
                       asyncio.create_task(self.sender.run())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.queue.stop()
