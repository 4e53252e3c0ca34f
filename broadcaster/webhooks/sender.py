"""The tasks of a node that POST decided webhooks, signed, retried with capped backoff.

Any answer but a 2xx, a timeout or a refused connection is retried: after 1 s, then twice as
long each time (at most :data:`MAX_BACKOFF`), for :data:`RETRY_FOR` seconds, then given up on,
counted, and logged once per run of such drops. The queue's store failing (Redis away) is
tried again too: a pop until it passes (the events wait in the store), marking events sent for
:data:`RETRY_FOR` (then they stay leased, and are sent again when this node restarts).
:data:`SENDERS` requests are in flight at once, so one slow or failing receiver holds up only
its own; receivers order events by ``time_ms``, as Pusher says. At shutdown, the node waits a
little (:data:`STOP_GRACE`) for the endings still in their window and the queue to be sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from functools import partial

import aiohttp

from shared.signatures import sign_webhook

from ..config import AppConfig, Webhook
from .base import DELAY, RETRY_FOR, Drops, WebhookEvent, WebhookQueue, webhook_body

logger = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds for one POST
MAX_BACKOFF = 30.0  # seconds between two tries at most
BATCH = 50  # events in one request, with batching on
BATCH_WINDOW = 0.05  # seconds a batch waits for more events
SENDERS = 8  # requests in flight at once
MAX_ANSWER = 65_536  # bytes of a receiver's answer read; a longer one closes its connection
STOP_GRACE = DELAY + 2.0  # seconds shutdown waits for waiting endings and queued webhooks


class WebhookSender:
    """Drains ``queue`` to each app's webhook URLs; ``apps`` by id."""

    def __init__(self, queue: WebhookQueue, apps: Mapping[str, AppConfig],
                 timeout: float = TIMEOUT, retry_for: float = RETRY_FOR,
                 senders: int = SENDERS) -> None:
        self.queue, self.apps = queue, apps
        self.timeout, self.retry_for, self.senders = timeout, retry_for, senders
        # requests answered 2xx, their events, tries answered otherwise, requests given up on
        self.delivered = self.events_delivered = self.retried = self.failed = 0
        self.gave_up = Drops(f"their receiver failed them for {retry_for:.0f} s")
        self.in_flight = 0  # events popped and not yet done with

    async def run(self) -> None:
        """Deliver forever: pop in order (batches form here), post up to :attr:`senders` at
        once. While every sender is busy, events wait in the queue, and with batching on they
        then go out together."""
        slots = asyncio.Semaphore(self.senders)
        posting: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.senders),
                timeout=aiohttp.ClientTimeout(total=self.timeout)) as client:
            while True:
                await slots.acquire()
                try:
                    events = await self._next()
                except Exception:
                    slots.release()
                    logger.exception("cannot read the webhook queue; trying again in 1 s")
                    await asyncio.sleep(1.0)
                    continue
                task = asyncio.create_task(self._deliver(client, events))
                posting.add(task)
                task.add_done_callback(posting.discard)
                task.add_done_callback(lambda _: slots.release())

    async def _next(self) -> list[WebhookEvent]:
        """The next events to send: one, or with batching on, what a short window brings.
        The first pop is tried until the store answers; the batch's rest only once."""
        events = await self._pop(1, wait=True)
        app = self.apps.get(events[0].app_id)
        if app is not None and app.webhook_batching:
            await asyncio.sleep(BATCH_WINDOW)
            events += await self._pop(BATCH - 1, wait=False)
        return events

    async def _pop(self, limit: int, wait: bool) -> list[WebhookEvent]:
        popped: list[WebhookEvent] = []

        async def pop() -> None:
            popped.extend(await self.queue.pop(limit, wait))
            self.in_flight += len(popped)

        await self.queue.retried(pop, lambda: not wait)
        return popped

    async def _deliver(self, client: aiohttp.ClientSession, events: list[WebhookEvent]) -> None:
        """POST ``events`` to each URL that wants them (one request per event for an app
        without batching), every URL and app on its own, then mark them done."""
        posts = []
        for app_id in dict.fromkeys(event.app_id for event in events):
            app = self.apps.get(app_id)
            if app is None:
                continue
            mine = [event for event in events if event.app_id == app_id]
            for target in app.webhooks:
                wanted = [event for event in mine if target.wants(event.name, event.channel)]
                bodies = [wanted] if app.webhook_batching else [[event] for event in wanted]
                posts += [self._post(client, app, target, body) for body in bodies if body]
        try:
            await asyncio.gather(*posts)
        except Exception:
            self.failed += 1
            logger.exception("%d webhook events could not be sent; dropped", len(events))
            self.gave_up.drop(len(events))
        finally:
            self.in_flight -= len(events)
        deadline = time.monotonic() + self.retry_for
        if not await self.queue.retried(partial(self.queue.done, events),
                                        lambda: time.monotonic() > deadline):
            logger.warning("cannot mark %d webhook events sent for %.0f s; they stay leased and "
                           "are sent again when this node restarts", len(events), self.retry_for)

    async def _post(self, client: aiohttp.ClientSession, app: AppConfig, target: Webhook,
                    events: list[WebhookEvent]) -> None:
        body = webhook_body(events)
        headers = {**dict(target.headers), "Content-Type": "application/json",
                   "X-Pusher-Key": app.key,
                   "X-Pusher-Signature": sign_webhook(app.secret, body)}
        deadline, backoff = time.monotonic() + self.retry_for, 1.0
        while True:
            try:
                async with client.post(target.url, data=body, headers=headers,
                                       allow_redirects=False) as response:
                    length = response.content_length
                    if length is not None and length <= MAX_ANSWER:
                        await response.read()  # then the connection is kept for the next

                if 200 <= response.status < 300:
                    self.delivered += 1
                    self.events_delivered += len(events)
                    self.gave_up.ended()
                    return
                problem = f"answered {response.status}"
            except (aiohttp.ClientError, TimeoutError) as error:
                problem = _failure(error, self.timeout)
            if time.monotonic() + backoff > deadline:
                self.failed += 1
                if not self.gave_up.run:
                    logger.error("webhook to %s %s; gave up after %.0f s",
                                 target.url, problem, self.retry_for)
                self.gave_up.drop(len(events))
                return
            self.retried += 1
            logger.warning("webhook to %s %s; retrying in %.0f s", target.url, problem, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)


def _failure(error: BaseException, timeout: float) -> str:
    """What went wrong with one try, in words (an exception's repr is not for people)."""
    if isinstance(error, TimeoutError):
        return f"got no answer within {timeout:g} s"
    if isinstance(error, aiohttp.ClientConnectorError):
        cause = error.os_error
        reason = os.strerror(cause.errno) if cause.errno else "no connection"
        return f"failed: cannot connect to {error.host}:{error.port}: {reason}"
    return f"failed: {error}" if str(error) else f"failed: {type(error).__name__}"


class Webhooks:
    """A node's webhooks: the queue's decision task and the sender's task, started together."""

    def __init__(self, queue: WebhookQueue, sender: WebhookSender) -> None:
        self.queue, self.sender = queue, sender
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.queue.start()
        self._tasks = [asyncio.create_task(self.queue.run()),
                       asyncio.create_task(self.sender.run())]

    def metrics(self) -> dict[str, float]:
        sender, queue = self.sender, self.queue
        return {"webhook_requests": sender.delivered, "webhook_events": sender.events_delivered,
                "webhook_retries": sender.retried, "webhook_failures": sender.failed,
                "webhook_drops": queue.dropped + sender.gave_up.total,
                "webhook_queued": queue.queued, "webhook_store_retries": queue.outage.retries,
                "webhook_queue": queue.unsettled() + sender.in_flight}

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Give endings in their window and queued webhooks up to ``grace`` seconds, then stop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while (self.queue.unsettled() or self.sender.in_flight) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self.queue.unsettled() or self.sender.in_flight:
            logger.warning("stopping with webhooks unsent: %d waiting here, %d being sent",
                           self.queue.unsettled(), self.sender.in_flight)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.queue.stop()
