"""Channel authorization rules registered like Laravel's routes/channels.php.

A pattern such as ``user.{user_id}.orders`` matches a channel name after its first
``private-encrypted-``, ``private-`` or ``presence-`` prefix is stripped; ``{x}`` matches
``[^.]+`` and the whole name must match. A rule's callback gets the user and the captured
parameters and answers False/None (denied), True (allowed) or, for presence channels, a dict
of user info (allowed, and that info goes into ``channel_data``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

AUTH_PREFIXES = ("private-encrypted-", "private-", "presence-")

Callback = Callable[..., Any]

_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def strip_auth_prefix(channel: str) -> str:
    """The channel name without its first matching auth prefix (unchanged if none)."""
    for prefix in AUTH_PREFIXES:
        if channel.startswith(prefix):
            return channel[len(prefix):]
    return channel


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A regex for ``pattern``: literals escaped, each ``{name}`` a ``[^.]+`` named group."""
    parts: list[str] = []
    pos = 0
    for param in _PARAM_RE.finditer(pattern):
        parts.append(re.escape(pattern[pos:param.start()]))
        parts.append(f"(?P<{param.group(1)}>[^.]+)")
        pos = param.end()
    parts.append(re.escape(pattern[pos:]))
    return re.compile("".join(parts))


@dataclass(frozen=True)
class Rule:
    pattern: str
    regex: re.Pattern[str]
    callback: Callback


@dataclass(frozen=True)
class Match:
    rule: Rule
    params: dict[str, str]


class ChannelRules:
    """An ordered registry of channel patterns; the first matching pattern decides."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []

    def channel(self, pattern: str) -> Callable[[Callback], Callback]:
        """Decorator registering ``callback(user, **params)`` for ``pattern``."""

        def register(callback: Callback) -> Callback:
            self._rules.append(Rule(pattern, compile_pattern(pattern), callback))
            return callback

        return register

    def match(self, channel: str) -> Match | None:
        """The rule for full channel name ``channel`` (prefix included), or None."""
        name = strip_auth_prefix(channel)
        for rule in self._rules:
            found = rule.regex.fullmatch(name)
            if found:
                return Match(rule, found.groupdict())
        return None

    def authorize(self, user: Any, channel: str) -> Any:
        """What the matching rule answers for ``user`` (None when no rule matches)."""
        found = self.match(channel)
        if found is None:
            return None
        return found.rule.callback(user, **found.params)
