"""Webhooks: the event values, Pusher's body format, and the queue every node feeds.

The hot path only calls :meth:`WebhookQueue.put` (through :class:`AppHooks`): a plain value
appended to a bounded in-memory inbox. One task per node (:meth:`WebhookQueue.run`) makes the
cluster-wide decisions (is this the channel's first node? was the vacated channel re-occupied
within :data:`DELAY`?) and pushes what must be sent to the delivery queue, which
:class:`~broadcaster.webhooks.sender.WebhookSender` drains. The twins
(:class:`~.local.LocalWebhookQueue`, :class:`~.redis_queue.RedisWebhookQueue`) only provide the
primitives: occupancy, hold/resume/release of a delayed event, push, pop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from shared.channels import SERVER_TO_USER_PREFIX
from shared.payloads import dumpb, dumps, loads

logger = logging.getLogger(__name__)

DELAY = 3.0  # seconds channel_vacated and member_removed wait for a re-occupation / re-add
MAX_PENDING = 10_000  # events waiting in a queue; past it new ones are dropped and counted
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


class WebhookQueue(ABC):
    """A node's webhook inbox and its decisions; the delivery queue is the twin's."""

    def __init__(self, max_pending: int = MAX_PENDING, delay: float = DELAY) -> None:
        self.max_pending, self.delay = max_pending, delay
        self.inbox: deque[WebhookEvent] = deque()
        self.dropped = 0  # events dropped: a queue was full, or Redis failed their decision
        self.wanted: dict[str, frozenset[str]] = {}  # app id -> event types someone wants
        self.relevant: dict[str, frozenset[str]] = {}  # ... and the ones that decide them
        self.waiting = 0  # endings in their window, and events being decided
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def put(self, event: WebhookEvent) -> None:
        """Queue ``event`` for a decision; never waits. A full inbox drops it, counted."""
        if event.name not in self.relevant.get(event.app_id, ()):
            return
        if len(self.inbox) >= self.max_pending:
            self.drop("inbox")
            return
        self.inbox.append(event)
        self._wake.set()

    def drop(self, where: str) -> None:
        """Count an event dropped because ``where`` (a queue) was full, and log now and then."""
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:
            logger.warning("webhook %s full (%d events): dropped %d webhook events so far; the "
                           "receiver is slow or down", where, self.max_pending, self.dropped)

    async def run(self) -> None:
        """Decide every queued event, forever (one task per node)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.inbox:
                event = self.inbox.popleft()
                self.waiting += 1
                try:
                    await self._decide(event)
                except Exception:
                    logger.exception("webhook %s on %s could not be decided; dropped",
                                     event.name, event.channel)
                    self.dropped += 1
                finally:
                    self.waiting -= 1

    def unsettled(self) -> int:
        """Events of this node not yet on the delivery queue, or (in memory) not yet sent."""
        return len(self.inbox) + self.waiting

    async def _decide(self, event: WebhookEvent) -> None:
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
            self.waiting += 1
            asyncio.get_running_loop().call_later(self.delay, self._spawn, event, token)
        elif event.name in BEGINNINGS and await self.resume(event.window_key):
            return  # the ending within the window is cancelled, and so is this
        elif event.name in self.wanted.get(event.app_id, ()):
            await self.push(event)

    def _spawn(self, event: WebhookEvent, token: str) -> None:
        task = asyncio.get_running_loop().create_task(self._confirm(event, token))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _confirm(self, event: WebhookEvent, token: str) -> None:
        try:
            if await self.release(event, token) and (
                    event.name in self.wanted.get(event.app_id, ())):
                await self.push(event)
        except Exception:
            logger.exception("webhook %s on %s could not be sent; dropped",
                             event.name, event.channel)
            self.dropped += 1
        finally:
            self.waiting -= 1

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
    async def push(self, event: WebhookEvent) -> None:
        """Put a decided event on the delivery queue (sent once per cluster)."""

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
