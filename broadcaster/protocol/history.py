"""History channels, Sans-I/O: which channels keep their events, how a kept event's frame
carries its position, what a resume may replay, and the ring that keeps them on one process.

A *position* is ``(serial, epoch)``: serials count a channel's publications 1, 2, 3, ...;
the epoch names the sequence, and changes when the history was lost (a Redis restarted empty,
a channel idle past its ``ttl``), so that a resume across it fails rather than replays wrong.
On one process the :class:`Ring` of each channel assigns them (``AppState.deliver``); with
Redis, ``cluster/lua/publish_history.lua`` does, atomically with the publication.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass
from fnmatch import fnmatchcase

from ..config import AppConfig, HistoryRule

MAX_READ = 1_000  # events one read (the HTTP API, a resume) gives at most
MAX_RULE_CACHE = 10_000  # channel names whose rule an app remembers


def with_position(message: bytes, serial: int, epoch: str) -> bytes:
    """``message`` (a JSON object) with its position as two more top-level fields, as
    subscribers of a history channel get it; ``publish_history.lua`` builds the same bytes."""
    return b'%s,"serial":%d,"epoch":"%s"}' % (message[:-1], serial, epoch.encode())


def new_epoch() -> str:
    return secrets.token_hex(4)


class HistoryRules:
    """An app's history rules, with the answer for each channel name remembered (bounded)."""

    __slots__ = ("rules", "_known")

    def __init__(self, config: AppConfig) -> None:
        self.rules = config.history
        self._known: dict[str, HistoryRule | None] = {}

    def of(self, channel: str) -> HistoryRule | None:
        """The first rule whose glob matches ``channel``, or None: no history."""
        try:
            return self._known[channel]
        except KeyError:
            pass
        rule = next((rule for rule in self.rules if fnmatchcase(channel, rule.channels)), None)
        if len(self._known) >= MAX_RULE_CACHE:
            self._known.clear()
        self._known[channel] = rule
        return rule


@dataclass(frozen=True, slots=True)
class Window:
    """What a channel's history holds after a serial: ``frames`` as ``(serial, frame)`` in
    order (at most the read's limit), the ``latest`` serial published (0: none), the
    ``oldest`` kept (0: none kept), and the ``epoch`` ("" before the first publication)."""

    frames: tuple[tuple[int, bytes], ...]
    latest: int
    oldest: int
    epoch: str

    def resume_error(self, after: int, epoch: str | None) -> str | None:
        """Why a client that has everything up to ``after`` (of ``epoch``) cannot be given
        the rest from this window, or None when it can."""
        if epoch and self.epoch and epoch != self.epoch:
            return (f"the history was lost and started again (epoch {self.epoch}, not {epoch}); "
                    "reload")
        if after > self.latest:
            return f"serial {after} was never published (latest is {self.latest}); reload"
        if after < self.latest and not (self.oldest and self.oldest <= after + 1):
            return (f"the events after serial {after} are no longer kept (oldest kept: "
                    f"{self.oldest or 'none'}); reload")
        return None


class Ring:
    """One channel's kept events on one process: the last ``limit``, none older than ``ttl``."""

    __slots__ = ("rule", "epoch", "serial", "entries")

    def __init__(self, rule: HistoryRule) -> None:
        self.rule = rule
        self.epoch = new_epoch()
        self.serial = 0
        self.entries: deque[tuple[int, float, bytes]] = deque()  # (serial, expiry, frame)

    def append(self, message: bytes, now: float) -> bytes:
        """Keep ``message`` as the next event; the frame (with its position) is returned."""
        self.serial += 1
        frame = with_position(message, self.serial, self.epoch)
        entries = self.entries
        entries.append((self.serial, now + self.rule.ttl, frame))
        if len(entries) > self.rule.limit:
            entries.popleft()
        return frame

    def prune(self, now: float) -> None:
        """Forget the events older than the ttl."""
        entries = self.entries
        while entries and entries[0][1] <= now:
            entries.popleft()

    def window(self, after: int, limit: int, now: float) -> Window:
        self.prune(now)
        frames = [(serial, frame) for serial, _, frame in self.entries if serial > after]
        oldest = self.entries[0][0] if self.entries else 0
        return Window(tuple(frames[:limit]), self.serial, oldest, self.epoch)


EMPTY = Window((), 0, 0, "")
