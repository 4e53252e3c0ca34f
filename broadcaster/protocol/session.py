"""The Pusher protocol for one socket, Sans-I/O: commands in, messages and closes out.

A :class:`Session` owns what one socket has done (its channels, its signed-in user, its client
event budget) and acts on the app's state. It reaches sockets only through the ``Client``
interface, so it runs the same under the asyncio listener and in fast unit tests. Signing in
(:mod:`.signin`) and history (:mod:`.resume`) are its parts in modules of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.channels import SERVER_TO_USER_PREFIX, channel_type
from shared.payloads import JSONDecodeError, dumpb, dumps, encode_message, loads
from shared.signatures import verify_channel

from .messages import (
    CLIENT_EVENT_RATE_LIMIT,
    GENERIC_RECONNECT,
    OVER_QUOTA,
    SLOW_CONSUMER,
    SUBSCRIPTION_LIMIT,
    UNAUTHORIZED,
    ClientEvent,
    Ping,
    Pong,
    ProtocolError,
    Resume,
    Signin,
    Subscribe,
    Unsubscribe,
    parse_message,
)
from .publication import Publication
from .ratelimit import FixedWindow, TokenBucket
from .replies import PONG, error_message, established_message, reason_of
from .requests import (
    Answer,
    Cached,
    FetchCache,
    Full,
    Joined,
    JoinPresence,
    LeavePresence,
    Listen,
    Listening,
    ReadHistory,
    Request,
    SignIn,
    SignOut,
    Watched,
)
from .resume import Resuming, Resumption
from .signin import SigningIn
from .state import AppState, Channel, Client
from .subscription_count import counted

MAX_BACKLOG = 100  # messages one socket may send while its subscription waits for an answer


def _presence_member(channel_data: str | None, max_info_size: int) -> tuple[str, Any]:
    """``(user_id, user_info)`` from a presence subscription's ``channel_data``."""
    if channel_data is None:
        raise ProtocolError(
            GENERIC_RECONNECT, "presence subscriptions need channel_data with a user_id"
        )
    try:
        member = loads(channel_data)
    except JSONDecodeError:
        raise ProtocolError(GENERIC_RECONNECT, "channel_data must be a JSON object") from None
    if not isinstance(member, dict):
        raise ProtocolError(GENERIC_RECONNECT, "channel_data must be a JSON object")
    user_id = member.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id:
        raise ProtocolError(
            GENERIC_RECONNECT, "channel_data.user_id must be a non-empty string or integer"
        )
    user_info = member.get("user_info")
    if len(dumpb(user_info)) > max_info_size:
        raise ProtocolError(
            GENERIC_RECONNECT, f"channel_data.user_info is larger than {max_info_size} bytes"
        )
    return user_id, user_info


class Session(SigningIn, Resuming):
    """One socket's protocol state and its handling of every client command.

    Cluster-wide decisions (a presence join or leave, a cache channel's last event) are
    requests given to ``ask``; the edge runs them and calls :meth:`answer`. While a join or a
    cache fetch is open, the socket's later messages wait in a bounded backlog and are handled
    after the answer, in order; other sockets never wait.
    """

    __slots__ = ("app", "client", "channels", "user_id", "limiter", "clock", "publish", "ask",
                 "waiting", "backlog", "closed", "message_limit", "max_subscriptions",
                 "memberships", "watching", "deadline", "succeeding", "resuming", "heard",
                 "listening")

    def __init__(self, app: AppState, client: Client, clock: Callable[[], float],
                 publish: Callable[[Publication], None],
                 ask: Callable[[Request], None], max_subscriptions: int = 1000) -> None:
        self.app = app
        self.client = client
        self.publish = publish  # the bus: client events reach other processes' sockets too
        self.ask = ask  # the cluster state: answers come back through answer()
        self.channels: dict[str, Channel] = {}
        self.user_id: str | None = None  # from pusher:signin
        self.clock = clock
        self.limiter: TokenBucket | None = None  # made on the first client event
        self.waiting: JoinPresence | FetchCache | SignIn | ReadHistory | None = None
        # messages received while a request is open; made when needed (memory per socket)
        self.backlog: list[str | bytes] | None = None
        self.closed = False
        limit = app.config.message_rate_limit  # Reverb's rate_limiting: every message counts
        self.message_limit = None if limit is None else FixedWindow(limit.max_attempts,
                                                                    limit.decay_seconds)
        # At most this many channels; past it a subscription is refused with 4302 (the socket
        # stays open): see SUBSCRIPTION_LIMIT for why that code.
        self.max_subscriptions = max_subscriptions
        # user id -> presence channels joined as it; made on the first presence join
        self.memberships: dict[str, int] | None = None
        self.watching: tuple[str, ...] = ()  # the signed-in user's watchlist
        # With authorized connections: when the socket must have signed in or joined a private
        # or presence channel (see unauthorized()); None once it has, or when not required.
        self.deadline: float | None = None
        # History channels: a success waiting for the channel's position (its data), and
        # the resume being read
        self.succeeding: Any = None
        self.resuming: Resumption | None = None
        # channels the node heard (Listen answers) while another request was open: answered
        # before the backlog; made when needed
        self.heard: list[tuple[str, Answer]] | None = None
        # channels whose Listen is out: asked once, however often the client subscribes again
        # meanwhile (at most one open Listen per channel); made when needed
        self.listening: set[str] | None = None

    @property
    def socket_id(self) -> str:
        return self.client.socket_id

    def open(self) -> None:
        """Register the socket and greet it with ``pusher:connection_established``."""
        self.app.add_connection(self.client)
        timeout = self.app.config.authorized_connections_timeout
        if timeout is not None:
            self.deadline = self.clock() + timeout
        self.client.send(established_message(self.socket_id, self.app.config.activity_timeout))

    def handle_text(self, text: str | bytes) -> None:
        """Act on one client text message; a bad one gets ``pusher:error`` and nothing else.

        While a request is open the message waits (at most :data:`MAX_BACKLOG`; past that the
        socket is closed with 4100, as a slow consumer is). Past the app's message rate limit
        it gets 4301 and is dropped; with ``terminate_on_limit`` the socket is closed too.
        """
        if self.message_limit is not None and not self.message_limit.allow(self.clock()):
            self._over_message_limit()
            return
        self._handle_text(text)

    def _over_message_limit(self) -> None:
        limit = self.app.config.message_rate_limit
        reason = (f"rate limit exceeded: at most {limit.max_attempts} messages per "
                  f"{limit.decay_seconds:g} s")
        self.client.send(error_message(CLIENT_EVENT_RATE_LIMIT, reason))
        if limit.terminate:
            self.client.close(CLIENT_EVENT_RATE_LIMIT, reason)

    def _handle_text(self, text: str | bytes) -> None:
        if self.waiting is not None:
            if self.backlog is None:
                self.backlog = []
            if len(self.backlog) >= MAX_BACKLOG:
                self.client.close(SLOW_CONSUMER, "too many messages while a subscription "
                                  "was pending; reconnect later")
                return
            self.backlog.append(text)
            return
        try:
            command = parse_message(text)
            if isinstance(command, Ping):
                self.client.send(PONG)
            elif isinstance(command, Pong):
                pass  # any frame counts as activity; the connection has noted it
            elif isinstance(command, Subscribe):
                self.subscribe(command)
            elif isinstance(command, Unsubscribe):
                self.unsubscribe(command.channel)
            elif isinstance(command, Signin):
                self.signin(command)
            elif isinstance(command, Resume):
                self.resume(command)
            else:
                self.client_event(command)
        except ProtocolError as error:
            self.app.refusals[error.code] += 1
            self.client.send(error_message(error.code, error.message))

    def unauthorized(self, now: float) -> bool:
        """Whether the app requires authorized connections and this one's time is up: call
        from the sweep; when True, close the socket with 4009."""
        return self.deadline is not None and now >= self.deadline

    def _request(self, request: JoinPresence | FetchCache | SignIn | ReadHistory) -> None:
        """Ask, holding back this socket's later messages until :meth:`answer`."""
        self.waiting = request
        self.ask(request)

    def answer(self, request: Request, answer: Answer) -> None:
        """Call with the answer to a request this session asked; then flush the socket.

        The local state calls it before ``ask`` returns; the Redis state later. Messages that
        waited for it are handled next, in the order they came.
        """
        if isinstance(request, LeavePresence | SignOut):
            return  # the state has announced the removal; nothing else depends on it
        if isinstance(request, Listen):  # never held the socket's messages back
            if self.closed:
                return
            if self.listening is not None:
                self.listening.discard(request.channel)
            if self.waiting is not None:
                if self.heard is None:
                    self.heard = []
                self.heard.append((request.channel, answer))
                return
            self._listened(request.channel, answer)
            self._drain()
            return
        if self.closed:
            self.succeeding = self.resuming = None
            if isinstance(request, JoinPresence) and isinstance(answer, Joined):
                self.ask(self._leave_request(request.channel, request.user_id))
            elif isinstance(request, SignIn) and isinstance(answer, Watched):
                self.ask(self._sign_out_request(request.user_id))
            return
        if request is not self.waiting:
            return
        self.waiting = None
        if isinstance(request, JoinPresence):
            self._joined(request, answer)
        elif isinstance(request, SignIn):
            self._watched(request, answer)
        elif isinstance(request, ReadHistory):
            self._history_read(request, answer)
        else:
            self._cache_answer(request.channel, answer)
        self._drain()

    def _drain(self) -> None:
        """While no request is open: the channels heard meanwhile, then the messages that
        waited, in the order they came."""
        while self.waiting is None and not self.closed:
            if self.heard:
                self._listened(*self.heard.pop(0))
            elif self.backlog:
                self._handle_text(self.backlog.pop(0))  # counted when it came
            else:
                return

    # --- subscriptions ---------------------------------------------------------------------

    def subscribe(self, command: Subscribe) -> None:
        name = command.channel
        channel = self.channels.get(name)
        if channel is not None and not channel.type.is_presence:
            self._entered(name)  # answered as a first subscription
            return
        if channel is None and len(self.channels) >= self.max_subscriptions:
            raise ProtocolError(SUBSCRIPTION_LIMIT, f"cannot subscribe to {name}: a connection "
                                f"may be on {self.max_subscriptions} channels at most; "
                                "unsubscribe from one first")
        self._join(command)

    def _succeeded(self, name: str, data: Any) -> None:
        """Tell the socket it is on ``name``; on a history channel (not a cache one, whose
        last event answers instead), with the channel's position, read first."""
        if self.app.history is not None and not channel_type(name).cached \
                and self.app.history.of(name) is not None:
            self.succeeding = data
            self._request(ReadHistory(self.app.id, name))
            return
        self._send_success(name, encode_message("pusher_internal:subscription_succeeded", data,
                                                channel=name))

    def _send_success(self, name: str, message: bytes) -> None:
        self.client.send(message)
        self._count_changed(self.channels.get(name))

    def _count_changed(self, channel: Channel | None) -> None:
        counts = self.app.subscription_counts
        if counts is not None and channel is not None and counted(channel):
            counts.changed(channel, self.clock())

    def _enter(self, name: str) -> Channel:
        """Subscribe this socket to a channel that has no members (anything but presence)."""
        channel = self.app.open_channel(name)
        channel.subscribe(self.client)
        self.channels[name] = channel
        return channel

    def _join(self, command: Subscribe) -> None:
        name = command.channel
        if name.startswith(SERVER_TO_USER_PREFIX):
            # Sign-in already joined the user's own channel; any other user's is off limits.
            raise ProtocolError(
                UNAUTHORIZED, f"{name} is for its signed-in user only; send pusher:signin first"
            )
        kind = channel_type(name)
        config = self.app.config
        if kind.requires_auth:
            signed_data = command.channel_data if kind.is_presence else None
            if not verify_channel(
                command.auth, config.key, config.secret, self.socket_id, name, signed_data
            ):
                raise ProtocolError(
                    UNAUTHORIZED,
                    f"invalid signature for {name}: auth must be 'key:' + hex HMAC-SHA256 of "
                    f"'socket_id:channel{':channel_data' if kind.is_presence else ''}'",
                )
            self.deadline = None  # an authorized connection now
        if not kind.is_presence:
            self._enter(name)
            self._entered(name)
            return
        user_id, user_info = _presence_member(command.channel_data, config.max_user_info_size)
        channel = self.channels.get(name)
        if channel is not None and channel.user_of(self.socket_id) != user_id:
            self.unsubscribe(name)  # subscribing again as another member: leave as the first
        added = {"user_id": user_id, "user_info": user_info}
        self._request(JoinPresence(
            self.app.id, name, self.socket_id, user_id, user_info, config.max_presence_members,
            Publication(self.app.id, (name,), "pusher_internal:member_added", dumps(added),
                        except_socket_id=self.socket_id),
        ))

    def _entered(self, name: str) -> None:
        """Answer a subscription to non-presence channel ``name``, once the node hears it (the
        node's interest comes before the success: nothing published after it is missed); a
        cache channel then gives its last event."""
        routes = self.app.routes
        if routes is not None and not routes.ready(name):
            # The socket's next messages need not wait: a client resubscribing to hundreds of
            # channels at once gets each success as the node hears the channel.
            if self.listening is None:
                self.listening = set()
            if name not in self.listening:  # else the open one's answer succeeds for both
                self.listening.add(name)
                self.ask(Listen(self.app.id, name))
        elif channel_type(name).cached:
            self._request(FetchCache(self.app.id, name))
        else:
            self._succeeded(name, {})

    def _listened(self, name: str, answer: Answer) -> None:
        if name not in self.channels:
            return  # unsubscribed meanwhile (another session's answer may be this one's too)
        if not isinstance(answer, Listening):
            self.client.send(error_message(GENERIC_RECONNECT, f"cannot subscribe to {name}: "
                                           f"{reason_of(answer)}; subscribe again later"))
            self.unsubscribe(name)
        elif channel_type(name).cached:
            self._request(FetchCache(self.app.id, name))
        else:
            self._succeeded(name, {})

    def _joined(self, request: JoinPresence, answer: Answer) -> None:
        name = request.channel
        if isinstance(answer, Full):
            self.app.refusals[OVER_QUOTA] += 1
            self.client.send(error_message(
                OVER_QUOTA, f"{name} already has {answer.limit} members"))
            return
        if not isinstance(answer, Joined):
            self.client.send(error_message(GENERIC_RECONNECT, f"cannot join {name}: "
                                           f"{reason_of(answer)}; subscribe again later"))
            return
        channel = self.app.open_channel(name)
        channel.join(self.client, request.user_id)
        self.channels[name] = channel
        if self.memberships is None:
            self.memberships = {}
        self.memberships[request.user_id] = self.memberships.get(request.user_id, 0) + 1
        self.app.add_user(request.user_id, self.client)
        members = answer.members
        self._succeeded(name, {"presence": {
            "count": len(members), "ids": list(members), "hash": members,
        }})
        if channel.type.cached:
            self._request(FetchCache(self.app.id, name))

    def _cache_answer(self, name: str, answer: Answer) -> None:
        if name not in self.channels:
            return  # unsubscribed while the answer was on its way
        if not isinstance(answer, Cached):
            self.client.send(error_message(GENERIC_RECONNECT, f"cannot read the last event of "
                                           f"{name}: {reason_of(answer)}"))
            return
        if not channel_type(name).is_presence:
            self._succeeded(name, {})
        if answer.message is None:
            self.client.send(encode_message("pusher:cache_miss", channel=name))
            if self.app.hooks is not None:
                self.app.hooks.cache_miss(name)
        else:
            self.client.send(answer.message)

    def _leave_request(self, name: str, user_id: str) -> LeavePresence:
        removed = Publication(self.app.id, (name,), "pusher_internal:member_removed",
                              dumps({"user_id": user_id}))
        return LeavePresence(self.app.id, name, self.socket_id, user_id, removed)

    def unsubscribe(self, name: str) -> None:
        """Leave ``name``; unsubscribing from a channel the socket is not on does nothing."""
        channel = self.channels.pop(name, None)
        if channel is None:
            return
        user_id = channel.leave(self.socket_id)
        if user_id is not None:
            if self.memberships is not None:
                left = self.memberships.pop(user_id, 1) - 1
                if left:
                    self.memberships[user_id] = left
            self.ask(self._leave_request(name, user_id))
            if not self._is_user(user_id):
                self.app.remove_user(user_id, self.client)
        self._count_changed(channel)
        self.app.drop_if_empty(channel)

    def _is_user(self, user_id: str) -> bool:
        """Whether this socket still belongs to ``user_id`` (signed in or a presence member)."""
        return self.user_id == user_id or user_id in (self.memberships or ())

    # --- client events ---------------------------------------------------------------------

    def client_event(self, command: ClientEvent) -> None:
        config = self.app.config
        name = command.channel
        if config.accept_client_events_from == "none":
            raise ProtocolError(UNAUTHORIZED, "this app does not accept client events")
        if not channel_type(name).accepts_client_events:
            raise ProtocolError(
                UNAUTHORIZED, "client events go only on private- and presence- channels"
            )
        channel = self.channels.get(name)
        if channel is None and config.accept_client_events_from == "members":
            raise ProtocolError(
                UNAUTHORIZED, f"subscribe to {name} before sending client events on it"
            )
        now = self.clock()
        if self.limiter is None:
            self.limiter = TokenBucket(config.client_events_per_second, now)
        if not self.limiter.allow(now):
            raise ProtocolError(
                CLIENT_EVENT_RATE_LIMIT,
                f"client events are limited to {config.client_events_per_second} per second",
            )
        user_id = channel.user_of(self.socket_id) if channel is not None else None
        data = command.data
        if data is not None and not isinstance(data, str):
            data = dumps(data)  # once here, as encode_message would on every process
        self.app.client_events += 1
        if self.app.hooks is not None:
            self.app.hooks.client_event(name, command.event, data, self.socket_id, user_id)
        self.publish(Publication(self.app.id, (name,), command.event, data,
                                 except_socket_id=self.socket_id, user_id=user_id))

    # --- end -------------------------------------------------------------------------------

    def close(self) -> None:
        """Forget the socket: leave every channel (presence members get removed) and the app.

        A join still waiting for its answer is left when the answer comes (see :meth:`answer`).
        """
        self.closed = True
        self.backlog = self.heard = self.listening = None
        if self.resuming is not None:
            self.resuming.release()
        for name in list(self.channels):
            self.unsubscribe(name)
        if self.user_id is not None:
            self.app.remove_user(self.user_id, self.client)
            self._sign_out(self.user_id)
            self.user_id = None
        self.app.remove_connection(self.client)
