"""The real Resound server with one deliberate fault, for tests/test_bench_guard.py.

    python -m tests.faulty_broadcaster drop|swap|hold|forget start --host 127.0.0.1 --port 8080

``drop``: every broadcast skips a tenth of the channel's subscribers (a different tenth each
time). ``swap``: it also writes the frame a second time to another tenth, so the number of frames
written is what a correct server writes, but some subscribers get an event twice and others never.
``hold``: a node on Redis never drops a channel's stream once it has held it (its last local
subscriber leaving changes nothing), so it keeps receiving that channel's publications.
``forget``: no channel keeps history, whatever the app's history rules say.
The fault is patched in here, in this process only; the broadcaster's code is not changed.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

from broadcaster.cluster.redis_bus import RedisBus
from broadcaster.protocol.history import HistoryRules
from broadcaster.protocol.state import Channel
from broadcaster.server.cli import main

MODES = ("drop", "swap", "hold", "forget")


def _tenth(channel: Channel, turn: int) -> dict[str, Any]:
    subscribers = channel.subscribers.items()
    return {key: client for index, (key, client) in enumerate(subscribers) if index % 10 == turn}


def install(mode: str) -> None:
    """Replace ``Channel.broadcast`` with a faulty wrapper around the real one (``hold``:
    ``RedisBus.release`` with one that does nothing; ``forget``: ``HistoryRules.of`` with one
    that finds no rule)."""
    if mode == "hold":
        RedisBus.release = lambda self, app_id, channel: None
        return
    if mode == "forget":
        HistoryRules.of = lambda self, channel: None
        return
    real = Channel.broadcast
    turns = itertools.count()

    def faulty(self: Channel, frame: bytes, except_socket_id: str | None = None) -> None:
        turn = next(turns) % 10
        everyone = self.subscribers
        skipped = _tenth(self, turn)
        doubled = _tenth(self, (turn + 1) % 10) if mode == "swap" else {}
        try:
            self.subscribers = {key: value for key, value in everyone.items()
                                if key not in skipped}
            real(self, frame, except_socket_id)
            self.subscribers = doubled
            real(self, frame, except_socket_id)
        finally:
            self.subscribers = everyone

    Channel.broadcast = faulty


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        sys.exit(f"usage: python -m tests.faulty_broadcaster {'|'.join(MODES)} start [options]")
    install(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
