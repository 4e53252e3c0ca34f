"""Rate limits: a token bucket for client events (Pusher allows 10 per second per
connection), a fixed window for all of a socket's messages (Reverb's rate_limiting).

Pure: the caller passes the clock, so tests need no sleeps.
"""

from __future__ import annotations


class TokenBucket:
    """Up to ``rate`` events per second, with bursts of at most ``rate``."""

    __slots__ = ("rate", "tokens", "updated")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.updated = now

    def allow(self, now: float) -> bool:
        """Take one token if there is one; False means the event is over the limit."""
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def retry_after(self) -> float:
        """After :meth:`allow` said False: seconds until the next token."""
        return max(0.0, (1 - self.tokens) / self.rate)


class FixedWindow:
    """Up to ``max_attempts`` events per window of ``seconds``; a window opens at the first
    event after the previous one closed (Reverb's message rate limit counts this way)."""

    __slots__ = ("max_attempts", "seconds", "count", "ends")

    def __init__(self, max_attempts: int, seconds: float) -> None:
        self.max_attempts = max_attempts
        self.seconds = seconds
        self.count = 0
        self.ends = float("-inf")

    def allow(self, now: float) -> bool:
        """Count one event; False means it is over the limit (and is not counted)."""
        if now >= self.ends:
            self.count, self.ends = 0, now + self.seconds
        if self.count >= self.max_attempts:
            return False
        self.count += 1
        return True
