"""``resound:resume`` for one socket, Sans-I/O: hold the channel's live frames back while its
history is read, replay what the client missed, then let the held frames go.

The replay and the held frames may overlap (an event published while the read was on its
way): the client drops a repeat by its serial. Nothing is reordered: every replayed frame goes
out before any held one, and the held ones go in the order they came.
"""

from __future__ import annotations

from typing import Any

from shared.payloads import dumps, encode_message

from .history import Window, with_position
from .messages import (
    CLIENT_EVENT_RATE_LIMIT,
    GENERIC_RECONNECT,
    SLOW_CONSUMER,
    UNAUTHORIZED,
    ProtocolError,
    Resume,
)
from .ratelimit import TokenBucket
from .replies import error_message, reason_of
from .requests import Answer, ReadHistory
from .state import Channel, Client

MAX_HELD = 1_000  # live frames held for one socket while its resume is read; past it, 4100


def resume_failed(channel: str, reason: str, latest: int, epoch: str) -> bytes:
    return encode_message("resound:resume_failed",
                          dumps({"reason": reason, "latest": latest, "epoch": epoch}),
                          channel=channel)


def resume_succeeded(channel: str, latest: int, epoch: str) -> bytes:
    return encode_message("resound:resume_succeeded", dumps({"latest": latest, "epoch": epoch}),
                          channel=channel)


class Held:
    """Stands in for a socket among a channel's subscribers while its resume is read: keeps
    the frames broadcast meanwhile (bounded) for :meth:`release`."""

    __slots__ = ("client", "socket_id", "frames")

    def __init__(self, client: Client) -> None:
        self.client = client
        self.socket_id = client.socket_id
        self.frames: list[bytes] | None = []

    def send(self, message: bytes) -> None:
        self.client.send(message)

    def send_frame(self, frame: bytes) -> None:
        if self.frames is None:
            return
        if len(self.frames) >= MAX_HELD:
            self.frames = None
            self.client.close(SLOW_CONSUMER, "too many events while a resume was read; "
                              "reconnect and resume again")
            return
        self.frames.append(frame)

    def close(self, code: int, reason: str) -> None:
        self.client.close(code, reason)


class Resumption:
    """One open resume of ``request.channel`` for ``client``; :meth:`hold` once the answer
    is known to come later, :meth:`answer` when it comes."""

    __slots__ = ("request", "epoch", "client", "channel", "held")

    def __init__(self, request: ReadHistory, epoch: str | None, client: Client,
                 channel: Channel) -> None:
        self.request = request
        self.epoch = epoch
        self.client = client
        self.channel = channel
        self.held: Held | None = None

    def hold(self) -> None:
        """Hold the channel's live frames for this socket until the answer."""
        subscribers = self.channel.subscribers
        if subscribers.get(self.client.socket_id) is self.client:
            self.held = Held(self.client)
            subscribers[self.client.socket_id] = self.held  # type: ignore[assignment]

    def answer(self, answer: Answer, reason: Any) -> None:
        """Replay (or refuse) by ``answer``, then let the held frames go. ``reason`` turns an
        answer that is not a window into the ``pusher:error`` text the caller sends."""
        name = self.request.channel
        if isinstance(answer, Window):
            error = answer.resume_error(self.request.after, self.epoch)
            if error is not None:
                self.client.send(resume_failed(name, error, answer.latest, answer.epoch))
            else:
                for _, frame in answer.frames:
                    self.client.send(frame)
                self.client.send(resume_succeeded(name, answer.latest, answer.epoch))
        else:
            reason(answer)
        self.release()

    def release(self) -> None:
        """Put the socket back among the channel's subscribers; send what was held."""
        held, self.held = self.held, None
        if held is None:
            return
        subscribers = self.channel.subscribers
        if subscribers.get(self.client.socket_id) is held:
            subscribers[self.client.socket_id] = self.client
        for frame in held.frames or ():
            self.client.send_frame(frame)


class Resuming:
    """The history part of a :class:`~broadcaster.protocol.session.Session` (a mixin: the state
    is the session's): positions on subscription successes, and ``resound:resume``."""

    __slots__ = ()

    def _history_read(self, request: ReadHistory, answer: Answer) -> None:
        name = request.channel
        if request.limit:  # a resume
            resuming, self.resuming = self.resuming, None
            if resuming is not None:
                resuming.answer(answer, lambda failed: self.client.send(error_message(
                    GENERIC_RECONNECT, f"cannot resume {name}: {reason_of(failed)}")))
            return
        data, self.succeeding = self.succeeding, None
        if name not in self.channels:
            return
        if not isinstance(answer, Window):
            self.client.send(error_message(GENERIC_RECONNECT, f"cannot subscribe to {name}: "
                                           f"{reason_of(answer)}; subscribe again later"))
            self.unsubscribe(name)
            return
        message = encode_message("pusher_internal:subscription_succeeded", data, channel=name)
        self._send_success(name, with_position(message, answer.latest, answer.epoch))

    def resume(self, command: Resume) -> None:
        """Replay a history channel's events after ``command.after`` (see :mod:`.resume`);
        counted against the socket's client event budget."""
        name = command.channel
        channel = self.channels.get(name)
        if channel is None:
            raise ProtocolError(UNAUTHORIZED, f"subscribe to {name} before resuming it")
        now = self.clock()
        if self.limiter is None:
            self.limiter = TokenBucket(self.app.config.client_events_per_second, now)
        if not self.limiter.allow(now):
            raise ProtocolError(CLIENT_EVENT_RATE_LIMIT, "resumes count as client events: at "
                                f"most {self.app.config.client_events_per_second} per second")
        rule = self.app.history.of(name) if self.app.history is not None else None
        if rule is None:
            self.client.send(resume_failed(name, f"{name} keeps no history", 0, ""))
            return
        request = ReadHistory(self.app.id, name, command.after, rule.limit)
        self.resuming = Resumption(request, command.epoch, self.client, channel)
        self._request(request)
        if self.resuming is not None and self.waiting is request:
            self.resuming.hold()  # the answer comes later: hold live frames until then
