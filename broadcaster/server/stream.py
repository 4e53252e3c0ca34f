"""Writing to one socket with bounded memory.

asyncio calls :meth:`Stream.pause_writing` once a transport holds more than its high-water mark
(64 KiB) that the kernel would not take. From then on, what we write for that socket waits in
our own queue (``held``) instead of the transport's, until :meth:`Stream.resume_writing`:

- the queue is counted, for this socket (``write_buffer_limit``) and for the whole listener
  (``write_buffer_total``); past either, :meth:`Stream.overflow` sheds the socket;
- shedding drops the queue, so a close frame written then goes out right after the little the
  transport still holds, not behind megabytes the client will never read.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .listener import Server


class Stream(asyncio.Protocol):
    """A socket's transport and its flow control; subclasses say how to shed a slow reader."""

    __slots__ = ("server", "transport", "closing", "held", "held_size", "writing_paused",
                 "on_drained")

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.closing = False
        self.held: deque[bytes] | None = None  # made when the transport first pauses us
        self.held_size = 0  # bytes in held
        self.writing_paused = False
        self.on_drained: Callable[[], None] | None = None

    def write(self, data: bytes) -> None:
        """Write ``data`` now, or hold it while the transport is paused; past a limit, shed."""
        held = self.held
        if held is None:
            if not self.writing_paused:
                self.transport.write(data)
                return
            held = self.held = deque()
            self.server.holding.add(self)
        held.append(data)
        self.held_size += len(data)
        self.server.held(len(data))  # past the listener's budget, the worst sockets are shed
        if self.held_size > self.server.config.write_buffer_limit:
            self.overflow()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        """Hand what waited to the transport, until it pauses us again or nothing is left."""
        self.writing_paused = False
        held = self.held
        if held is None:
            return
        while held and not self.writing_paused:
            data = held.popleft()
            self.held_size -= len(data)
            self.server.released(len(data))
            self.transport.write(data)
        if not held:
            self.held = None
            self.server.holding.discard(self)
            if self.on_drained is not None:
                done, self.on_drained = self.on_drained, None
                done()

    def after_drain(self, done: Callable[[], None]) -> None:
        """Call ``done`` (close, half-close) once what is held has gone to the transport."""
        if self.held:
            self.on_drained = done
        else:
            done()

    def drop_held(self) -> None:
        """Forget what waits for this socket (it is closing: the client would never read it)."""
        if self.held is not None:
            self.server.released(self.held_size)
            self.server.holding.discard(self)
            self.held = None
            self.held_size = 0

    def overflow(self) -> None:
        """Shed this socket: it holds more than its share. Subclasses close it their way."""
        raise NotImplementedError
