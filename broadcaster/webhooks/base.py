"""Webhooks: the event values, Pusher's body format, and the queue every node feeds.

The hot path only calls :meth:`WebhookQueue.put` (through :class:`AppHooks`): a plain value
appended to a bounded in-memory inbox. One task per node (:meth:`WebhookQueue.run`) makes the
cluster-wide decisions (is this the channel's first node? was the vacated channel re-occupied
within :data:`DELAY`?), one step at a time, and pushes what must be sent to the delivery queue,
which :class:`~broadcaster.webhooks.sender.WebhookSender` drains. A burst waits in the inbox and
the window, never on the store's connections. A step that fails on the store (Redis away,
restarted) is tried again with capped backoff, for :data:`RETRY_FOR` from the event; only then
is the event dropped. The twins (:class:`~.local.LocalWebhookQueue`,
:class:`~.redis_queue.RedisWebhookQueue`) only provide the primitives: occupancy,
hold/resume/release of a delayed event, push, pop.

Memory: the inbox and the window together hold at most ``max_pending`` events per node
(:data:`MAX_PENDING`); each is a few hundred bytes, a ``client_event`` at most its data (the app's
``max_message_size``) more. Past the bound, new events are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from shared.channels import SERVER_TO_USER_PREFIX
from shared.payloads import dumpb, dumps, loads

logger = logging.getLogger(__name__)

DELAY = 3.0  # seconds channel_vacated and member_removed wait for a re-occupation / re-add
MAX_PENDING = 10_000  # events waiting on a node (or a delivery queue); past it new ones are dropped
RETRY_FOR = 300.0  # seconds from an event's time its steps are tried again (Pusher: 5 minutes)
RETRY_FIRST, RETRY_MAX = 0.1, 2.0  # seconds before the first try again, and at most between two
MAINTAIN_INTERVAL = 1.0  # seconds between two looks at what the store lost (WebhookQueue.maintain)
# An event that waits, and the one that cancels it (and is itself not sent) within DELAY.
ENDINGS = {"channel_vacated": "channel_occupied", "member_removed": "member_added"}
BEGINNINGS = {begin: end for end, begin in ENDINGS.items()}
OCCUPANCY = ("channel_occupied", "channel_vacated")


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One webhook event of ``app_id``, at ``time_ms`` (Unix ms, when it happened). For
    occupancy events, before the queue's decision: this node's first or last subscriber."""

    app_id: str
    name: str
    channel: str
    time_ms: int
    user_id: str | None = None
    event: str | None = None
    data: str | None = None
    socket_id: str | None = None
    subscription_count: int | None = None

    def payload(self) -> dict[str, Any]:
        """The event as Pusher's webhook body lists it."""
        fields = asdict(self)
        del fields["app_id"], fields["time_ms"]
        return {name: value for name, value in fields.items() if value is not None}

    @property
    def window_key(self) -> str:
        """What a delayed ending and the beginning that cancels it have in common."""
        return f"{{{self.app_id}:{self.channel}}}:{self.user_id or ''}"


def encode_event(event: WebhookEvent) -> str:
    return dumps(asdict(event))


def decode_event(raw: bytes | str) -> WebhookEvent:
    return WebhookEvent(**loads(raw))


def webhook_body(events: list[WebhookEvent], now_ms: int | None = None) -> bytes:
    """Pusher's webhook body: ``{"time_ms": ..., "events": [...]}``."""
    time_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return dumpb({"time_ms": time_ms,
                  "events": [event.payload() for event in events]})


class Drops:
    """Events given up on for one reason: counted, logged when a run of drops begins and once
    when it ends (:meth:`ended`), never per event."""

    __slots__ = ("reason", "run", "total")

    def __init__(self, reason: str) -> None:
        self.reason = reason  # completes "webhook events were dropped: ..."
        self.total = self.run = 0

    def drop(self, count: int = 1) -> None:
        if not self.run:
            logger.error("webhook events are being dropped: %s", self.reason)
        self.run += count
        self.total += count

    def ended(self) -> None:
        """The cause is gone (an event went through again): log the run's count."""
        if self.run:
            logger.error("%d webhook events were dropped (%s); %d since start",
                         self.run, self.reason, self.total)
            self.run = 0


class Outage:
    """Failed tries against the store of the webhook queue (Redis), counted; logged when the
    failures begin and when a try passes again."""

    __slots__ = ("retries", "retry_for", "since", "store")

    def __init__(self, retry_for: float, store: str = "its store") -> None:
        self.retry_for = retry_for  # seconds an event is tried again, for the log line
        self.store = store  # what the log lines call it
        self.retries = 0  # tries that failed and were tried again
        self.since: float | None = None  # monotonic time of the first failure in a row

    def failed(self, error: BaseException, waiting: int) -> None:
        self.retries += 1
        if self.since is None:
            self.since = time.monotonic()
            logger.warning("the webhook queue cannot reach %s (%s: %s); %d events wait and "
                           "are tried again for %.0f s each", self.store, type(error).__name__,
                           error, waiting, self.retry_for)

    def passed(self) -> None:
        if self.since is not None:
            logger.warning("the webhook queue reaches %s again after %.1f s", self.store,
                           time.monotonic() - self.since)
            self.since = None


@dataclass(frozen=True, slots=True)
class Ending:
    """An ending in its window: sent at ``due`` (loop time) unless ``token``'s hold is cancelled."""

    due: float
    event: WebhookEvent
    token: str


class WebhookQueue(ABC):
    """A node's webhook inbox and its decisions; the delivery queue is the twin's."""

    # what a step on the store raises when it may pass on a later try
    failures: tuple[type[BaseException], ...] = (OSError, TimeoutError)

    def __init__(self, max_pending: int = MAX_PENDING, delay: float = DELAY,
                 retry_for: float = RETRY_FOR) -> None:
        self.max_pending, self.delay, self.retry_for = max_pending, delay, retry_for
        self.inbox: deque[WebhookEvent] = deque()  # the head stays until it is settled
        self.window: deque[Ending] = deque()  # endings in their window, by due time
        self.full = Drops(f"more than {max_pending} events wait here or on the delivery queue")
        self.late = Drops(f"the store failed them for {retry_for:.0f} s")
        self.outage = Outage(retry_for)
        self.queued = 0  # events put on the delivery queue
        self.wanted: dict[str, frozenset[str]] = {}  # app id -> event types someone wants
        self.relevant: dict[str, frozenset[str]] = {}  # ... and the ones that decide them
        self.maintain_interval = MAINTAIN_INTERVAL
        self._maintain_at = 0.0  # loop time of the next maintain()
        self._suspect = False  # a step failed: maintain() before the next
        self._wake = asyncio.Event()

    @property
    def dropped(self) -> int:
        """Events given up on here: a bound was reached, or the store failed past the budget."""
        return self.full.total + self.late.total

    def put(self, event: WebhookEvent) -> None:
        """Queue ``event`` for a decision; never waits. A full node drops it, counted."""
        if event.name not in self.relevant.get(event.app_id, ()):
            return
        if self.unsettled() >= self.max_pending:
            self.full.drop()
            return
        if self.full.run and self.unsettled() < self.max_pending // 2:
            self.full.ended()
        self.inbox.append(event)
        self._wake.set()

    async def run(self) -> None:
        """Confirm the endings whose window closed, decide the queued events, in order and one
        at a time, forever (one task per node); :meth:`maintain` now and then."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if self.window and self.window[0].due <= now:
                ending = self.window[0]
                await self._settle(ending.event, partial(self._confirm, ending))
                self.window.popleft()
            elif self.inbox:
                event = self.inbox[0]
                await self._settle(event, partial(self._decide, event))
                self.inbox.popleft()
            elif now >= self._maintain_at:
                try:
                    await self._maintain()
                except self.failures as error:  # tried again before the next step
                    self._suspect = True
                    self.outage.failed(error, self.unsettled())
            else:
                await self._idle(min(self._maintain_at,
                                     self.window[0].due if self.window else math.inf))

    async def _idle(self, until: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(until):
                await self._wake.wait()

    async def _maintain(self) -> None:
        """Run :meth:`maintain`; the store's failures propagate, a bug is logged."""
        self._maintain_at = asyncio.get_running_loop().time() + self.maintain_interval
        try:
            await self.maintain()
        except self.failures:
            raise
        except Exception:
            logger.exception("webhook queue maintenance failed; tried again in %.0f s",
                             self.maintain_interval)
        self._suspect = False

    async def _settle(self, event: WebhookEvent, step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step`` for ``event`` until it passes, or drop the event once it fails past
        the budget (at once when the store is already known to be away). :meth:`maintain`
        first when it is due or a step failed."""
        if self.outage.since is not None and self._late(event):
            self.late.drop()
            return

        async def attempt() -> None:
            if self._suspect or asyncio.get_running_loop().time() >= self._maintain_at:
                await self._maintain()
            await step()

        try:
            if not await self.retried(attempt, lambda: self._late(event)):
                self.late.drop()
                return
        except Exception:
            logger.exception("webhook %s on %s could not be decided; dropped",
                             event.name, event.channel)
            self.late.drop()
            return
        self.late.ended()

    def _late(self, event: WebhookEvent) -> bool:
        return time.time() * 1000 - event.time_ms > self.retry_for * 1000

    async def retried(self, step: Callable[[], Awaitable[None]],
                      expired: Callable[[], bool]) -> bool:
        """Run ``step`` until it passes (True), trying again after the store's failures with
        capped backoff, or until one fails once ``expired()`` (False). Other errors propagate."""
        backoff = RETRY_FIRST
        while True:
            try:
                await step()
            except self.failures as error:
                self._suspect = True
                self.outage.failed(error, self.unsettled())
                if expired():
                    return False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX)
            else:
                self.outage.passed()
                return True

    def unsettled(self) -> int:
        """Events of this node not yet on the delivery queue, or (in memory) not yet sent."""
        return len(self.inbox) + len(self.window)

    async def _decide(self, event: WebhookEvent) -> None:
        """Every step may run again after a failure: each gives the same answer twice."""
        if event.name in OCCUPANCY and not await self.occupancy(
                event.app_id, event.channel, event.name == "channel_occupied"):
            return  # other nodes still have (or already had) subscribers
        if event.name == "subscription_count":
            wait = await self.count_due(event, int(time.time() * 1000))
            if wait is None:
                return  # this count was sent (by another node), or a newer one was
            if wait > 0:  # the cluster sent a count less than THROTTLE_SECONDS ago
                asyncio.get_running_loop().call_later(wait, self.put, event)
                return
        await self.decided(event)

    async def decided(self, event: WebhookEvent) -> None:
        """Send ``event``, decided cluster-wide: endings after the window, unless cancelled."""
        if event.name in ENDINGS:
            token = await self.hold(event.window_key)
            self.window.append(Ending(asyncio.get_running_loop().time() + self.delay, event,
                                      token))
        elif event.name in BEGINNINGS and await self.resume(event.window_key):
            return  # the ending within the window is cancelled, and so is this
        elif event.name in self.wanted.get(event.app_id, ()):
            await self._push(event)

    async def _confirm(self, ending: Ending) -> None:
        if await self.release(ending.event, ending.token) and (
                ending.event.name in self.wanted.get(ending.event.app_id, ())):
            await self._push(ending.event)

    async def _push(self, event: WebhookEvent) -> None:
        if await self.push(event):
            self.queued += 1
        else:
            self.full.drop()

    def want(self, app_id: str, event_types: set[str]) -> None:
        """Send ``app_id``'s events of ``event_types``; the others are never queued."""
        self.wanted[app_id] = frozenset(event_types)
        partners = {ENDINGS.get(name) or BEGINNINGS.get(name) for name in event_types}
        self.relevant[app_id] = frozenset(event_types | partners - {None})

    @abstractmethod
    async def start(self) -> None:
        """Connect to whatever holds the delivery queue (the local twin has nothing to do)."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect."""

    @abstractmethod
    async def maintain(self) -> None:
        """Every :data:`MAINTAIN_INTERVAL`, and before the next step after a failure: put back
        what the store lost, clean up after dead nodes."""

    @abstractmethod
    async def occupancy(self, app_id: str, channel: str, opened: bool) -> bool:
        """Record that this node's first subscriber arrived (``opened``) or last left; whether
        that was the first node of the cluster to hold the channel, or the last."""

    @abstractmethod
    async def count_due(self, event: WebhookEvent, now_ms: int) -> float | None:
        """Whether a ``subscription_count`` event goes out: 0 to send it now, seconds to wait
        (the cluster's throttle), or None when this count, or a newer one, was sent. Every
        node with subscribers sees a cluster-wide change: this sends it once."""

    @abstractmethod
    async def hold(self, key: str) -> str:
        """Mark an ending of ``key`` as waiting; a token for :meth:`release`."""

    @abstractmethod
    async def resume(self, key: str) -> bool:
        """Cancel the waiting ending of ``key``, if any: whether there was one."""

    @abstractmethod
    async def release(self, event: WebhookEvent, token: str) -> bool:
        """End the wait for ``event`` marked by ``token``: whether it still holds (it was not
        cancelled, and the channel is still empty or the user still gone): then send it."""

    @abstractmethod
    async def push(self, event: WebhookEvent) -> bool:
        """Put a decided event on the delivery queue (sent once per cluster); False when the
        queue is full and the event was not put there."""

    @abstractmethod
    async def pop(self, limit: int, wait: bool = True) -> list[WebhookEvent]:
        """Up to ``limit`` decided events (with ``wait``, waiting for the first), leased until
        :meth:`done`."""

    @abstractmethod
    async def done(self, events: list[WebhookEvent]) -> None:
        """The leased ``events`` are delivered (or given up on)."""


class AppHooks:
    """:class:`~broadcaster.protocol.state.Hooks` of one app: events into the queue's inbox."""

    __slots__ = ("app_id", "queue")

    def __init__(self, app_id: str, queue: WebhookQueue) -> None:
        self.app_id, self.queue = app_id, queue

    def _put(self, name: str, channel: str, **fields: str | int | None) -> None:
        if not channel.startswith(SERVER_TO_USER_PREFIX):
            self.queue.put(WebhookEvent(self.app_id, name, channel, int(time.time() * 1000),
                                        **fields))

    def channel_opened(self, channel: str) -> None:
        self._put("channel_occupied", channel)

    def channel_closed(self, channel: str) -> None:
        self._put("channel_vacated", channel)

    def member_changed(self, channel: str, user_id: str, added: bool) -> None:
        self._put("member_added" if added else "member_removed", channel, user_id=user_id)

    def client_event(self, channel: str, event: str, data: str | None, socket_id: str,
                     user_id: str | None) -> None:
        self._put("client_event", channel, event=event, data=data, socket_id=socket_id,
                  user_id=user_id)

    def cache_miss(self, channel: str) -> None:
        self._put("cache_miss", channel)

    def subscription_counted(self, channel: str, count: int) -> None:
        self._put("subscription_count", channel, subscription_count=count)
