"""Per-app state: sockets, channels, presence members, users and the cache of last events.

Pure bookkeeping. Sockets appear as :class:`Client` objects (anything that can take bytes and
be closed); the state never does I/O itself beyond handing frames to them.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType
from typing import Any, Protocol

from shared.channels import SERVER_TO_USER_PREFIX, ChannelType, channel_type

from ..config import AppConfig
from .frames import text_frame
from .history import EMPTY, HistoryRules, Ring, Window, with_position
from .subscription_count import SubscriptionCounts

CACHE_TTL = 1800.0  # seconds Pusher keeps a cache channel's last event
logger = logging.getLogger("broadcaster.channels")
debug_enabled = partial(logger.isEnabledFor, logging.DEBUG)
# What a channel without presence has for socket users: one read-only empty mapping shared by
# all, not an empty dict per channel (10,000 private channels would hold 10,000 of them).
NO_MEMBERS: Mapping[str, Any] = MappingProxyType({})


class Client(Protocol):
    """What the state needs from a socket: its id and a way to reach it."""

    socket_id: str

    def send(self, message: bytes) -> None:
        """Send one JSON message (it gets framed)."""

    def send_frame(self, frame: bytes) -> None:
        """Write an already-serialized WebSocket frame."""

    def close(self, code: int, reason: str) -> None:
        """Close the socket with a WebSocket close code."""


class Hooks(Protocol):
    """What an app tells its webhooks (``broadcaster.webhooks``): plain values, no I/O, no
    waiting. Occupancy is this process's; the webhooks decide it cluster-wide."""

    def channel_opened(self, channel: str) -> None:
        """``channel`` got its first subscriber on this process."""

    def channel_closed(self, channel: str) -> None:
        """``channel`` lost its last subscriber on this process."""

    def member_changed(self, channel: str, user_id: str, added: bool) -> None:
        """The cluster state decided ``user_id``'s first (``added``) or last socket."""

    def client_event(self, channel: str, event: str, data: str | None, socket_id: str,
                     user_id: str | None) -> None:
        """A socket sent a client event."""

    def cache_miss(self, channel: str) -> None:
        """A cache channel was subscribed with no last event to give."""

    def subscription_counted(self, channel: str, count: int) -> None:
        """``channel``'s subscriber count changed to ``count`` (cluster-wide in a cluster), past
        the throttle of :mod:`.subscription_count`."""


class Routes(Protocol):
    """Which channels this node hears (interest routing, :mod:`broadcaster.cluster`): plain
    calls, no I/O, no waiting. None on one process, where every publication is local."""

    def opened(self, channel: str) -> None:
        """``channel`` got its first subscriber on this node: hear it from now on."""

    def closed(self, channel: str) -> None:
        """``channel`` lost its last subscriber on this node: stop hearing it."""

    def ready(self, channel: str) -> bool:
        """Whether the node hears ``channel`` now (else ask :class:`~.requests.Listen`)."""


class Channel:
    """This process's subscribers of one channel and, for presence, which user each socket is.

    The presence roster (members, first and last socket of a user) is cluster state: it lives
    in :class:`~broadcaster.cluster.base.ClusterState`, which answers joins and leaves.
    """

    __slots__ = ("name", "type", "subscribers", "socket_users")

    def __init__(self, name: str) -> None:
        self.name = name
        self.type: ChannelType = channel_type(name)
        self.subscribers: dict[str, Client] = {}
        self.socket_users: Any = {} if self.type.is_presence else NO_MEMBERS  # socket id -> user

    @property
    def subscription_count(self) -> int:
        return len(self.subscribers)

    def subscribe(self, client: Client) -> None:
        self.subscribers[client.socket_id] = client

    def join(self, client: Client, user_id: str) -> None:
        """Subscribe a presence socket of ``user_id`` (the cluster state has admitted it)."""
        self.subscribers[client.socket_id] = client
        self.socket_users[client.socket_id] = user_id

    def leave(self, socket_id: str) -> str | None:
        """Unsubscribe a socket; for presence, the user it was a member as."""
        self.subscribers.pop(socket_id, None)
        if not self.type.is_presence:
            return None
        return self.socket_users.pop(socket_id, None)

    def user_of(self, socket_id: str) -> str | None:
        return self.socket_users.get(socket_id)

    def broadcast(self, frame: bytes, except_socket_id: str | None = None) -> None:
        """Write the same frame bytes to every subscriber but one."""
        for socket_id, client in self.subscribers.items():
            if socket_id != except_socket_id:
                client.send_frame(frame)


class AppState:
    """Everything live for one app: its sockets, channels, users and cached last events."""

    __slots__ = ("config", "clock", "connections", "channels", "users", "last_events",
                 "watchers", "subscription_counts", "connections_elsewhere",
                 "connections_opened", "connections_closed",
                 "messages_in", "bytes_in", "messages_out", "bytes_out", "client_events",
                 "refusals", "api_calls", "api_bytes_in", "hooks", "routes", "history", "rings")

    def __init__(self, config: AppConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.connections: dict[str, Client] = {}
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, dict[str, Client]] = {}  # user_id -> socket id -> client
        # watched user id -> the sockets whose watchlist has it (not a channel anyone can join)
        self.watchers: dict[str, Channel] = {}
        counting = config.subscription_count or any(
            "subscription_count" in webhook.event_types for webhook in config.webhooks)
        self.subscription_counts = SubscriptionCounts(self) if counting else None
        # cache channel -> (expiry on ``clock``, last message JSON)
        self.last_events: dict[str, tuple[float, bytes]] = {}
        # sockets of this app on the cluster's other nodes, as the cluster state last read them
        # (0 on one process): the connection cap counts them too
        self.connections_elsewhere = 0
        # Metrics: plain counters the hot path bumps; broadcaster.metrics reads them at scrape.
        self.connections_opened = self.connections_closed = 0
        self.messages_in = self.bytes_in = 0  # WebSocket messages (and their bytes) received
        self.messages_out = self.bytes_out = 0  # ... sent, a broadcast once per receiving socket
        self.client_events = 0
        self.refusals: Counter[int] = Counter()  # commands refused with pusher:error, by code
        self.api_calls = self.api_bytes_in = 0  # HTTP API requests for this app, body bytes
        self.hooks: Hooks | None = None  # the app's webhooks, when it has any
        self.routes: Routes | None = None  # which channels the node hears, in a cluster
        self.history = HistoryRules(config) if config.history else None
        self.rings: dict[str, Ring] = {}  # history channels' kept events, on one process

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def key(self) -> str:
        return self.config.key

    @property
    def secret(self) -> str:
        return self.config.secret

    @property
    def connection_count(self) -> int:
        return len(self.connections)

    def is_full(self) -> bool:
        limit = self.config.max_connections
        return limit is not None and len(self.connections) + self.connections_elsewhere >= limit

    def add_connection(self, client: Client) -> None:
        self.connections[client.socket_id] = client
        self.connections_opened += 1

    def remove_connection(self, client: Client) -> None:
        if self.connections.pop(client.socket_id, None) is not None:
            self.connections_closed += 1

    def received(self, size: int) -> None:
        """Count a WebSocket message of ``size`` bytes received from one of this app's sockets."""
        self.messages_in += 1
        self.bytes_in += size

    def sent(self, size: int) -> None:
        """Count a message of ``size`` bytes sent to one socket (broadcasts count themselves)."""
        self.messages_out += 1
        self.bytes_out += size

    def channel(self, name: str) -> Channel | None:
        """The occupied channel ``name``, or None when nobody is subscribed."""
        return self.channels.get(name)

    def occupied_channels(self) -> dict[str, Channel]:
        """Every channel with at least one subscriber, by name (not users' own channels)."""
        return {
            name: channel
            for name, channel in self.channels.items()
            if not name.startswith(SERVER_TO_USER_PREFIX)
        }

    def open_channel(self, name: str) -> Channel:
        channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = Channel(name)
            if self.routes is not None:
                self.routes.opened(name)
            if self.hooks is not None:
                self.hooks.channel_opened(name)
        return channel

    def drop_if_empty(self, channel: Channel) -> None:
        if not channel.subscribers and self.channels.pop(channel.name, None) is not None:
            if self.routes is not None:
                self.routes.closed(channel.name)
            if self.hooks is not None:
                self.hooks.channel_closed(channel.name)

    def add_user(self, user_id: str, client: Client) -> None:
        self.users.setdefault(user_id, {})[client.socket_id] = client

    def remove_user(self, user_id: str, client: Client) -> None:
        sockets = self.users.get(user_id)
        if sockets is not None:
            sockets.pop(client.socket_id, None)
            if not sockets:
                del self.users[user_id]

    def watch(self, user_ids: tuple[str, ...], client: Client) -> None:
        """Have ``client`` told when any of ``user_ids`` goes online or offline."""
        for user_id in user_ids:
            watchers = self.watchers.get(user_id)
            if watchers is None:
                watchers = self.watchers[user_id] = Channel(user_id)
            watchers.subscribe(client)

    def unwatch(self, user_ids: tuple[str, ...], client: Client) -> None:
        for user_id in user_ids:
            watchers = self.watchers.get(user_id)
            if watchers is not None:
                watchers.leave(client.socket_id)
                if not watchers.subscribers:
                    del self.watchers[user_id]

    def user_sockets(self, user_id: str) -> list[Client]:
        """Every socket known to belong to ``user_id`` (signed in, or a presence member)."""
        return list(self.users.get(user_id, {}).values())

    def send_to_channel(
        self, channel: Channel, message: bytes, except_socket_id: str | None = None
    ) -> None:
        """Frame ``message`` once and write it to the channel's subscribers."""
        subscribers = channel.subscribers
        if subscribers:
            if debug_enabled():
                logger.debug("> %s (%d subscribers, except %s): %s", channel.name,
                             len(subscribers), except_socket_id,
                             message[:2000].decode(errors="replace"))
            receivers = len(subscribers) - (except_socket_id in subscribers)
            self.messages_out += receivers
            self.bytes_out += receivers * len(message)
            channel.broadcast(text_frame(message), except_socket_id)

    def deliver(self, name: str, message: bytes, except_socket_id: str | None = None,
                cacheable: bool = True, position: tuple[int, str] | None = None) -> None:
        """An event on channel ``name``: remember it if it is a cache channel (and ``cacheable``:
        not a member event), then fan out. On a history channel the frame carries its
        ``position``: given by the bus in a cluster, assigned here (and kept) on one process."""
        if position is not None:
            message = with_position(message, *position)
        elif self.history is not None and cacheable and self.routes is None:
            rule = self.history.of(name)
            if rule is not None:
                ring = self.rings.get(name)
                if ring is None:
                    ring = self.rings[name] = Ring(rule)
                message = ring.append(message, self.clock())
        channel = self.channels.get(name)
        if channel is not None:
            if cacheable and channel.type.cached:
                self.last_events[name] = (self.clock() + CACHE_TTL, message)
            self.send_to_channel(channel, message, except_socket_id)
        elif cacheable and channel_type(name).cached:
            self.last_events[name] = (self.clock() + CACHE_TTL, message)

    def cached_event(self, channel: str) -> bytes | None:
        """The last event published on cache channel ``channel`` (message JSON), if fresh."""
        entry = self.last_events.get(channel)
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    def prune_cache(self) -> None:
        """Forget expired cache entries and kept events, so channels nobody uses again do not
        hold memory (a history channel idle past its ttl starts a new epoch)."""
        now = self.clock()
        for name in [name for name, (expiry, _) in self.last_events.items() if expiry <= now]:
            del self.last_events[name]
        for name, ring in list(self.rings.items()):
            ring.prune(now)
            if not ring.entries:
                del self.rings[name]

    def history_window(self, name: str, after: int, limit: int) -> Window | None:
        """A history channel's window on one process; None when ``name`` has no history."""
        rule = self.history.of(name) if self.history is not None else None
        if rule is None:
            return None
        ring = self.rings.get(name)
        return EMPTY if ring is None else ring.window(after, limit, self.clock())
