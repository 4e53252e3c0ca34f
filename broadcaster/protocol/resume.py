"""``resound:resume`` for one socket, Sans-I/O: hold the channel's live frames back while its
history is read, replay what the client missed, then let the held frames go.

The replay and the held frames may overlap (an event published while the read was on its
way): the client drops a repeat by its serial. Nothing is reordered: every replayed frame goes
out before any held one, and the held ones go in the order they came.
"""

from __future__ import annotations

from typing import Any

from shared.payloads import dumps, encode_message

from .history import Window
from .messages import SLOW_CONSUMER
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
