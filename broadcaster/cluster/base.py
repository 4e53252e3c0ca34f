"""The cluster's two interfaces: the bus that carries publications, and the shared state.

Each has an in-memory twin for one process (:mod:`.local`) and a Redis twin for several
(:mod:`.redis_bus`, :mod:`.redis_state`). Nothing outside ``server/factory`` knows which is in
use: the single-process default answers at once and pays nothing for the cluster path.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shared.channels import channel_type

from ..config import HistoryRule
from ..protocol.history import Window
from ..protocol.publication import Publication
from ..protocol.requests import (
    LISTENING,
    Answer,
    Cached,
    ChannelCounts,
    Connections,
    CountChannels,
    Counts,
    FetchCache,
    Full,
    Joined,
    JoinPresence,
    LeavePresence,
    Left,
    ListMembers,
    Members,
    ReadHistory,
    Request,
    SignIn,
    SignOut,
    Unavailable,
    Watched,
)
from ..protocol.state import AppState, Routes

Deliver = Callable[[Publication, "tuple[int, str] | None"], None]  # see Server.deliver
HistoryOf = Callable[[str, str], HistoryRule | None]  # (app id, channel) -> its history rule
Reply = Callable[[Answer], None]


CANCEL_AGAIN = 0.1  # seconds after which a task that outlived its cancellation is cancelled again


async def cancelled(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and return once each has ended. A cancellation a task swallowed (in
    Python 3.11, an ``asyncio.timeout`` inside redis-py whose own deadline passes at the same
    moment turns it into a TimeoutError) is repeated, rather than waited on for ever."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=CANCEL_AGAIN)
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: an error while stopping is not news


def _wrap(answer: Callable[[Any], Answer], value: Any) -> Answer:
    return value if isinstance(value, Unavailable) else answer(value)


class Bus(ABC):
    """Carries publications to the local delivery of every server process that shares it."""

    @abstractmethod
    def attach(self, deliver: Deliver, history: HistoryOf | None = None) -> None:
        """Set the function that delivers a publication to this process's sockets, and the
        one that tells which channels keep history (the bus numbers their events)."""

    @abstractmethod
    def publish(self, publication: Publication) -> None:
        """Send a publication to every attached server (this one included)."""

    def unavailable(self) -> str | None:
        """Why a publication could not reach every node now (an HTTP 503), or None when it can."""
        return None

    def routes(self, app_id: str) -> Routes | None:
        """App ``app_id``'s interest routing (see :class:`~broadcaster.protocol.state.Routes`):
        None where every node hears every publication (one process)."""
        return None

    def listen(self, app_id: str, channel: str, reply: Reply) -> None:
        """Answer a :class:`~broadcaster.protocol.requests.Listen`: ``reply(LISTENING)`` once
        this node hears ``channel``; at once where it always does."""
        reply(LISTENING)

    @abstractmethod
    async def start(self) -> None:
        """Connect to whatever carries the bus."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect from whatever carries the bus."""


class ClusterState(ABC):
    """What must be the same on every node: presence rosters, counts, caps, and node liveness.

    Methods are named for the decision they make and answer with values from
    :mod:`broadcaster.protocol.requests`; a backend outage is an :class:`Unavailable` answer,
    never an exception. :meth:`attach` gives the state this node's apps (its local sockets and
    channels) and the bus's ``publish`` (member events go out through it, or atomically from
    Redis, never announced by the caller).
    """

    counts_here = False  # whether this process's sockets are all there are (the local twin)

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.apps: Mapping[str, AppState] = {}
        self.publish: Deliver | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # requests in flight on an async backend

    def attach(self, apps: Mapping[str, AppState], publish: Deliver) -> None:
        """Give the state this node's live apps and the bus's publish; call before start()."""
        self.apps = apps
        self.publish = publish
        for app in apps.values():
            if app.subscription_counts is not None:  # cluster-wide counts need polling
                app.subscription_counts.polled = not self.counts_here

    def member_changed(self, app_id: str, channel: str, user_id: str, added: bool) -> None:
        """Tell the app's hooks (webhooks) that this node decided a user's first or last
        socket on ``channel``: only the deciding node calls it, so it happens once."""
        if not channel_type(channel).is_presence:
            return  # e.g. the roster of signed-in users (watchlist), not a channel's members
        app = self.apps.get(app_id)
        if app is not None and app.hooks is not None:
            app.hooks.member_changed(channel, user_id, added)

    @abstractmethod
    async def start(self) -> None:
        """Connect, register this node, start heartbeats (the local twin has nothing to do)."""

    @abstractmethod
    async def stop(self) -> None:
        """Unregister this node and disconnect."""

    def submit(self, request: Request, reply: Reply) -> None:
        """Run ``request`` and call ``reply(answer)``: later, from a task, on an async backend.

        The local twin overrides this to reply before returning (no task, no suspension).
        """
        task = asyncio.get_running_loop().create_task(self._run(request, reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, request: Request, reply: Reply) -> None:
        reply(await self.decide(request))

    async def decide(self, request: Request) -> Answer:
        """The answer to any request: dispatches to the method named for it."""
        if isinstance(request, JoinPresence):
            return await self.join_presence(request)
        if isinstance(request, LeavePresence):
            return await self.leave_presence(request)
        if isinstance(request, FetchCache):
            return await self.fetch_cache(request)
        if isinstance(request, SignIn):
            return await self.sign_in(request)
        if isinstance(request, SignOut):
            return await self.sign_out(request)
        if isinstance(request, CountChannels):
            return _wrap(Counts, await self.channel_counts(request.app_id, request.names))
        if isinstance(request, ListMembers):
            return _wrap(Members, await self.members(request.app_id, request.channel))
        if isinstance(request, ReadHistory):
            return await self.read_history(request)
        return _wrap(Connections, await self.connection_count(request.app_id))

    @abstractmethod
    async def join_presence(self, request: JoinPresence) -> Joined | Full | Unavailable:
        """Add the socket to the channel's roster; see :class:`JoinPresence`."""

    @abstractmethod
    async def leave_presence(self, request: LeavePresence) -> Left | Unavailable:
        """Remove the socket from the channel's roster; see :class:`LeavePresence`."""

    @abstractmethod
    async def sign_in(self, request: SignIn) -> Watched | Unavailable:
        """Count the socket as its user's; see :class:`SignIn`."""

    @abstractmethod
    async def sign_out(self, request: SignOut) -> Left | Unavailable:
        """Stop counting the socket as its user's; see :class:`SignOut`."""

    @abstractmethod
    async def fetch_cache(self, request: FetchCache) -> Cached | Unavailable:
        """A cache channel's last event, if fresh."""

    @abstractmethod
    async def members(self, app_id: str, channel: str) -> dict[str, Any] | Unavailable:
        """A presence channel's roster across the cluster: user id -> user info."""

    @abstractmethod
    async def channel_counts(
        self, app_id: str, names: tuple[str, ...] | None = None
    ) -> dict[str, ChannelCounts] | Unavailable:
        """Cluster-wide counts of ``names`` (all given back, occupied or not), or, with None,
        of every occupied channel (users' own ``#server-to-user-`` channels left out)."""

    @abstractmethod
    async def read_history(self, request: ReadHistory) -> Window | Unavailable:
        """A history channel's kept events; see :class:`ReadHistory`."""

    @abstractmethod
    async def connection_count(self, app_id: str) -> int | Unavailable:
        """How many sockets the app has open across the cluster."""
