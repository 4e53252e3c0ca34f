"""Publishing goes through a bus, so a Redis pub/sub bus can replace the local one.

The HTTP API (and anything else in the process) calls :meth:`Bus.publish`; whatever the bus,
publications end up in the server's local delivery function, which fans them out to sockets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

EVENT = "event"  # deliver ``event`` on ``channels``
TERMINATE_USER = "terminate_user"  # close every socket of ``user_id``
KINDS = (EVENT, TERMINATE_USER)


@dataclass(frozen=True, slots=True)
class Publication:
    """What every process must do for one app: by default, deliver an event on channels.

    A client event carries the sender's ``user_id`` on presence channels; a
    :data:`TERMINATE_USER` publication names the user whose sockets every process closes.
    """

    app_id: str
    channels: tuple[str, ...]
    event: str
    data: str | None  # already a JSON-encoded string, as Pusher carries it; None: no data
    except_socket_id: str | None = None
    user_id: str | None = None
    kind: str = EVENT


Deliver = Callable[[Publication], None]


class Bus(ABC):
    """Carries publications to the local delivery of every server process that shares it."""

    @abstractmethod
    def attach(self, deliver: Deliver) -> None:
        """Set the function that delivers a publication to this process's sockets."""

    @abstractmethod
    def publish(self, publication: Publication) -> None:
        """Send a publication to every attached server (this one included)."""

    @abstractmethod
    async def start(self) -> None:
        """Connect to whatever carries the bus."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect from whatever carries the bus."""


class LocalBus(Bus):
    """The single-process bus: publishing is delivering, straight away."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    def attach(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def start(self) -> None:
        """Nothing to connect to: delivery is a function call."""

    async def stop(self) -> None:
        """Nothing to disconnect from."""

    def publish(self, publication: Publication) -> None:
        if self._deliver is None:
            raise RuntimeError("LocalBus.publish before attach(): start the server first")
        self._deliver(publication)
