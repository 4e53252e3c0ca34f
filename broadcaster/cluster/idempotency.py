"""Idempotency keys of triggers: within the window, the first claim of a key wins.

An event triggered with an idempotency key (the ``Idempotency-Key`` header of ``POST events``,
an ``idempotency_key`` field of a ``batch_events`` item) is published only when its key is
fresh; a repeat within the window is answered 200 and not delivered again, so a client that
retries after a timeout never delivers twice. A key remembers its event's fingerprint: the key
reused for another event claims nothing of its request (the API answers 422). With scaling the
window is cluster-wide (:class:`RedisIdempotency`: ``lua/claim_keys.lua`` on keys under the
app's ``{app}`` hash tag); on one process it is this process's (:class:`LocalIdempotency`: a
bounded map, oldest keys first out).

Like every :class:`~.store.Store`, the local twin answers before ``submit`` returns and the
Redis twin later; an outage is an ``Unavailable`` answer (a 503).
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable

from ..protocol.requests import Claimed, ClaimKeys, Unavailable
from .base import Reply
from .store import RedisStore, Store

logger = logging.getLogger(__name__)

MAX_LOCAL_KEYS = 100_000  # keys the local twin remembers; past it, the oldest go early


class Idempotency(Store):
    """Remembers the idempotency keys claimed in the last ``window`` seconds, per app."""

    window: int

    @abstractmethod
    async def decide(self, request: ClaimKeys) -> Claimed | Unavailable:
        """Which of ``request``'s keys are fresh; see :class:`ClaimKeys`."""


class LocalIdempotency(Idempotency):
    """The keys of one process, in memory: at most ``max_keys``, each for ``window`` seconds.

    Every key lives equally long, so insertion order is expiry order: expired keys leave from
    the front, and when more than ``max_keys`` are live the oldest leaves early (a warning,
    once a window, says that a repeat of it would be delivered again).
    """

    def __init__(self, window: int, max_keys: int = MAX_LOCAL_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self.evicted = 0  # keys dropped before their window ended
        # (app, key) -> (expiry, fingerprint of the event it was claimed for)
        self._expiries: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()
        self._quiet_until = float("-inf")  # no eviction warning again before this

    async def start(self) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        """Nothing to disconnect from."""

    def submit(self, request: ClaimKeys, reply: Reply) -> None:
        """Answer before returning: the single process never waits for its own keys."""
        reply(self.answer(request))

    def answer(self, request: ClaimKeys) -> Claimed:
        """Which of ``request``'s keys are fresh, now (claiming them, unless one is reused
        for another event); the Python reading of ``lua/claim_keys.lua``."""
        now = self.clock()
        self._expire(now)
        held: dict[str, str] = {}  # key -> the fingerprint it holds, stored or claimed here
        fresh, reused = [], []
        for key, fingerprint in zip(request.keys, request.fingerprints, strict=True):
            if key is None:
                fresh.append(True)
                continue
            entry = self._expiries.get((request.app_id, key))
            holds = held.get(key, entry[1] if entry else None)
            fresh.append(holds is None)
            held[key] = fingerprint if holds is None else holds
            if holds is not None and holds != fingerprint:
                reused.append(key)
        if reused:
            return Claimed((False,) * len(request.keys), tuple(dict.fromkeys(reused)))
        for key, fingerprint, new in zip(request.keys, request.fingerprints, fresh, strict=True):
            if key is not None and new:
                self._claim(request.app_id, key, fingerprint, now)
        return Claimed(tuple(fresh))

    async def decide(self, request: ClaimKeys) -> Claimed:
        return self.answer(request)

    def _expire(self, now: float) -> None:
        expiries = self._expiries
        while expiries and next(iter(expiries.values()))[0] <= now:
            expiries.popitem(last=False)

    def _claim(self, app_id: str, key: str, fingerprint: str, now: float) -> None:
        self._expiries[(app_id, key)] = (now + self.window, fingerprint)
        if len(self._expiries) > self.max_keys:
            self._expiries.popitem(last=False)
            self.evicted += 1
            if now >= self._quiet_until:
                self._quiet_until = now + self.window
                logger.warning("more than %d idempotency keys in %d s: the oldest are forgotten "
                               "early, so their repeats would be delivered again; enable "
                               "scaling (Redis) or shorten RESOUND_IDEMPOTENCY_WINDOW",
                               self.max_keys, self.window)


class RedisIdempotency(RedisStore, Idempotency):
    """The keys of every node, in the Redis at ``url``: ``<prefix>:{<app>}:idem:<key>``, each
    holding its event's fingerprint for ``window`` seconds, claimed by ``lua/claim_keys.lua``
    (one script per request, so the first node to claim a key wins and a request is claimed
    whole or not at all; every key of a request shares the app's hash tag)."""

    script = "claim_keys"
    needs = "idempotency keys need it"

    def __init__(self, url: str, window: int, prefix: str = "resound",
                 timeout: float = 5.0) -> None:
        super().__init__(url, prefix, timeout)
        self.window = window

    def key(self, app_id: str, key: str) -> str:
        """The Redis key remembering idempotency key ``key`` of app ``app_id``."""
        return f"{self.prefix}:{{{app_id}}}:idem:{key}"

    async def decide(self, request: ClaimKeys) -> Claimed | Unavailable:
        keyed = [(key, fingerprint) for key, fingerprint
                 in zip(request.keys, request.fingerprints, strict=True) if key is not None]
        answers = await self.run_script(
            [self.key(request.app_id, key) for key, _ in keyed],
            [self.window, *(fingerprint for _, fingerprint in keyed)])
        if isinstance(answers, Unavailable):
            return answers
        reused = tuple(dict.fromkeys(key for (key, _), answer in zip(keyed, answers, strict=True)
                                     if answer == -1))
        if reused:
            return Claimed((False,) * len(request.keys), reused)
        results = iter(answers)
        return Claimed(tuple(key is None or next(results) == 1 for key in request.keys))
