"""A token bucket for client events: Pusher allows 10 per second per connection.

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
