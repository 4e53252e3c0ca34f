"""The single-process twins: publishing is delivering, straight away."""

from __future__ import annotations

from ..protocol.publication import Publication
from .base import Bus, Deliver


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
