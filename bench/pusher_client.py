"""An asyncio Pusher protocol-7 client for the bench: one socket, read by a task of its own.

Many public channels can be subscribed on one socket at once (:meth:`Socket.subscribe` keeps
:data:`IN_FLIGHT` ``pusher:subscribe`` unanswered at most: on Redis, a node holds back a
socket's later messages while one of its subscriptions waits for Redis, at most 100 of them,
then closes it with 4100); events go to
``on_event`` as they arrive, with their arrival time; :meth:`Socket.round_trip` returns once
the server has handled everything sent before it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

# (channel, event name, data, time.monotonic() on arrival)
OnEvent = Callable[[str, str, Any, float], None]
SUBSCRIBE_TIMEOUT = 60.0  # seconds a batch of subscriptions may take to succeed
IN_FLIGHT = 50  # subscriptions sent and not yet answered, at most, per socket


class PusherError(RuntimeError):
    """The server answered ``pusher:error``, or closed the socket; the message says which."""


class Socket:
    """One connection; call :meth:`open`, then :meth:`close` when done."""

    def __init__(self, ws: ClientConnection, on_event: OnEvent | None) -> None:
        self.ws = ws
        self.on_event = on_event
        self.socket_id = ""
        self.subscribed: set[str] = set()
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._pongs: list[asyncio.Future[None]] = []
        self._failed: PusherError | None = None
        self._established: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight = asyncio.Semaphore(IN_FLIGHT)
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, on_event: OnEvent | None = None) -> Socket:
        """A socket connected and established (its ``socket_id`` known)."""
        socket = cls(await connect(url, max_size=None, ping_interval=None), on_event)
        await socket._established
        return socket

    async def subscribe(self, channels: Iterable[str]) -> None:
        """Subscribe every public channel of ``channels``; return once each has succeeded.
        Raises :class:`PusherError` if the server refuses one or closes the socket."""
        loop = asyncio.get_running_loop()
        waits = []
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
            for channel in channels:
                await self._in_flight.acquire()
                if self._failed is not None:
                    self._in_flight.release()
                    raise self._failed
                waiting = self._waiting[channel] = loop.create_future()
                waiting.add_done_callback(lambda _: self._in_flight.release())
                waits.append(waiting)
                await self.ws.send(json.dumps({"event": "pusher:subscribe",
                                               "data": {"channel": channel}}))
            await asyncio.gather(*waits)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        """Send ``pusher:unsubscribe`` for each channel (the protocol has no answer to it)."""
        frames = []
        for channel in channels:
            self.subscribed.discard(channel)
            frames.append(json.dumps({"event": "pusher:unsubscribe",
                                      "data": {"channel": channel}}))
        self._check()
        await _send_all(self.ws, frames)

    async def round_trip(self) -> None:
        """``pusher:ping`` and its ``pusher:pong``: the server has handled what came before."""
        pong: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs.append(pong)
        self._check()
        await self.ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
            await pong

    async def close(self) -> None:
        self._reader.cancel()
        await self.ws.close()

    def _check(self) -> None:
        if self._failed is not None:
            raise self._failed

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self._handle(json.loads(raw), time.monotonic())
            self._fail(PusherError(f"the server closed the socket: {self.ws.close_code} "
                                   f"{self.ws.close_reason}"))
        except ConnectionClosed as exc:
            self._fail(PusherError(f"the connection broke: {exc}"))

    def _handle(self, message: dict[str, Any], arrived: float) -> None:
        event = message.get("event")
        if event == "pusher_internal:subscription_succeeded":
            channel = message["channel"]
            self.subscribed.add(channel)
            waiting = self._waiting.pop(channel, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
        elif event == "pusher:connection_established":
            self.socket_id = json.loads(message["data"])["socket_id"]
            self._established.set_result(None)
        elif event == "pusher:pong":
            if self._pongs:
                pong = self._pongs.pop(0)
                if not pong.done():
                    pong.set_result(None)
        elif event == "pusher:ping":
            asyncio.ensure_future(self.ws.send(json.dumps({"event": "pusher:pong",
                                                           "data": {}})))
        elif event == "pusher:error":
            self._fail(PusherError(f"pusher:error {message.get('data')}"))
        elif self.on_event is not None and "channel" in message:
            self.on_event(message["channel"], event or "", message.get("data"), arrived)

    def _fail(self, error: PusherError) -> None:
        self._failed = error
        waiting = [*self._waiting.values(), *self._pongs, self._established]
        self._waiting, self._pongs = {}, []
        for future in waiting:
            if not future.done():
                future.set_exception(error)
                future.exception()  # the caller raises it once; the others need no log line


async def _send_all(ws: ClientConnection, frames: list[str]) -> None:
    for frame in frames:
        await ws.send(frame)
