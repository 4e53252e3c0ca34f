"""The single-process twins: publishing is delivering, and cluster state is this process's.

Both answer at once. :class:`LocalState` is the Python reading of the Redis twin's Lua
scripts (``lua/join_presence.lua``, ``lua/leave_presence.lua``): change and review the pair
together; ``tests/cluster/test_state_contract.py`` holds both to one contract.
"""

from __future__ import annotations

from typing import Any

from shared.channels import channel_type

from ..protocol.history import EMPTY, Window
from ..protocol.publication import Publication
from ..protocol.requests import (
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
    Watched,
)
from .base import Bus, ClusterState, Deliver, HistoryOf, Reply


class LocalBus(Bus):
    """The single-process bus: publishing is delivering, straight away."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    def attach(self, deliver: Deliver, history: HistoryOf | None = None) -> None:
        self._deliver = deliver  # one process: AppState numbers history channels' events

    async def start(self) -> None:
        """Nothing to connect to: delivery is a function call."""

    async def stop(self) -> None:
        """Nothing to disconnect from."""

    def publish(self, publication: Publication) -> None:
        if self._deliver is None:
            raise RuntimeError("LocalBus.publish before attach(): start the server first")
        self._deliver(publication, None)


class Roster:
    """One presence channel's members: user id -> user info, and user id -> socket ids."""

    __slots__ = ("members", "sockets")

    def __init__(self) -> None:
        self.members: dict[str, Any] = {}
        self.sockets: dict[str, set[str]] = {}


class LocalState(ClusterState):
    """Cluster state when the cluster is this one process: dictionaries, answered at once."""

    counts_here = True

    def __init__(self, node_id: str = "local") -> None:
        super().__init__(node_id)
        self._rosters: dict[tuple[str, str], Roster] = {}
        self._online: dict[tuple[str, str], set[str]] = {}  # (app, user) -> signed-in sockets

    async def start(self) -> None:
        """Nothing to connect to or register."""

    async def stop(self) -> None:
        """Nothing to disconnect from."""

    def submit(self, request: Request, reply: Reply) -> None:
        """Answer before returning: the single process never waits for its own state."""
        reply(self.answer(request))

    def answer(self, request: Request) -> Answer:
        """The answer to ``request``, now."""
        if isinstance(request, JoinPresence):
            return self._join(request)
        if isinstance(request, LeavePresence):
            return self._leave(request)
        if isinstance(request, FetchCache):
            return self._cached(request)
        if isinstance(request, SignIn):
            return self._sign_in(request)
        if isinstance(request, SignOut):
            return self._sign_out(request)
        if isinstance(request, CountChannels):
            return Counts(self._channel_counts(request.app_id, request.names))
        if isinstance(request, ListMembers):
            return Members(self._members(request.app_id, request.channel))
        if isinstance(request, ReadHistory):
            return self._history(request)
        return Connections(self._connection_count(request.app_id))

    def _join(self, request: JoinPresence) -> Joined | Full:
        key = (request.app_id, request.channel)
        roster = self._rosters.get(key) or self._rosters.setdefault(key, Roster())
        user_id = request.user_id
        sockets = roster.sockets.get(user_id)
        if sockets is None:
            if len(roster.members) >= request.max_members:
                if not roster.members:
                    del self._rosters[key]
                return Full(request.max_members)
            sockets = roster.sockets[user_id] = set()
        first = not sockets
        sockets.add(request.socket_id)
        if first:
            roster.members[user_id] = request.user_info
            self.publish(request.added)
            self.member_changed(request.app_id, request.channel, user_id, True)
        members = roster.members
        if request.roster_of is not None:
            return Joined(first, {user: members[user] for user in request.roster_of
                                  if user in members})
        return Joined(first, dict(members))

    def _leave(self, request: LeavePresence) -> Left:
        key = (request.app_id, request.channel)
        roster = self._rosters.get(key)
        sockets = roster.sockets.get(request.user_id) if roster is not None else None
        if sockets is None or request.socket_id not in sockets:
            return Left(False)
        sockets.discard(request.socket_id)
        if sockets:
            return Left(False)
        del roster.sockets[request.user_id]
        del roster.members[request.user_id]
        if not roster.members:
            del self._rosters[key]
        self.publish(request.removed)
        self.member_changed(request.app_id, request.channel, request.user_id, False)
        return Left(True)

    def _sign_in(self, request: SignIn) -> Watched:
        sockets = self._online.setdefault((request.app_id, request.user_id), set())
        first = not sockets
        sockets.add(request.socket_id)
        if first:
            self.publish(request.online)
        app_id = request.app_id
        return Watched(tuple(user_id for user_id in request.watchlist
                             if (app_id, user_id) in self._online))

    def _sign_out(self, request: SignOut) -> Left:
        key = (request.app_id, request.user_id)
        sockets = self._online.get(key)
        if sockets is None or request.socket_id not in sockets:
            return Left(False)
        sockets.discard(request.socket_id)
        if sockets:
            return Left(False)
        del self._online[key]
        self.publish(request.offline)
        return Left(True)

    def _cached(self, request: FetchCache) -> Cached:
        app = self.apps.get(request.app_id)
        return Cached(app.cached_event(request.channel) if app is not None else None)

    async def join_presence(self, request: JoinPresence) -> Joined | Full:
        return self._join(request)

    async def leave_presence(self, request: LeavePresence) -> Left:
        return self._leave(request)

    async def sign_in(self, request: SignIn) -> Watched:
        return self._sign_in(request)

    async def sign_out(self, request: SignOut) -> Left:
        return self._sign_out(request)

    async def fetch_cache(self, request: FetchCache) -> Cached:
        return self._cached(request)

    async def members(self, app_id: str, channel: str) -> dict[str, Any]:
        return self._members(app_id, channel)

    def _members(self, app_id: str, channel: str) -> dict[str, Any]:
        roster = self._rosters.get((app_id, channel))
        return dict(roster.members) if roster is not None else {}

    def _counts(self, app_id: str, name: str) -> ChannelCounts:
        app = self.apps.get(app_id)
        channel = app.channel(name) if app is not None else None
        subscriptions = channel.subscription_count if channel is not None else 0
        if not channel_type(name).is_presence:
            return ChannelCounts(subscriptions)
        roster = self._rosters.get((app_id, name))
        return ChannelCounts(subscriptions, len(roster.members) if roster is not None else 0)

    async def channel_counts(
        self, app_id: str, names: tuple[str, ...] | None = None
    ) -> dict[str, ChannelCounts]:
        return self._channel_counts(app_id, names)

    def _channel_counts(
        self, app_id: str, names: tuple[str, ...] | None
    ) -> dict[str, ChannelCounts]:
        if names is None:
            app = self.apps.get(app_id)
            names = tuple(app.occupied_channels()) if app is not None else ()
        return {name: self._counts(app_id, name) for name in names}

    async def read_history(self, request: ReadHistory) -> Window:
        return self._history(request)

    def _history(self, request: ReadHistory) -> Window:
        app = self.apps.get(request.app_id)
        window = app.history_window(request.channel, request.after, request.limit) \
            if app is not None else None
        return EMPTY if window is None else window

    async def connection_count(self, app_id: str) -> int:
        return self._connection_count(app_id)

    def _connection_count(self, app_id: str) -> int:
        app = self.apps.get(app_id)
        return app.connection_count if app is not None else 0
