"""Channel-name rules: which kind a name denotes, and whether it is valid.

Kinds come from anchored prefixes; the longest matching prefix wins, so
``private-encrypted-cache-x`` is an encrypted cache channel, not a plain private one.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

MAX_CHANNEL_NAME_LENGTH = 200
MAX_EVENT_NAME_LENGTH = 200
CLIENT_EVENT_PREFIX = "client-"
RESERVED_EVENT_PREFIXES = ("pusher:", "pusher_internal:")
SERVER_TO_USER_PREFIX = "#server-to-user-"

_NAME_RE = re.compile(r"[A-Za-z0-9_\-=@,.;]+")


class Access(enum.Enum):
    """Who may subscribe: anyone, a signed socket, or a signed socket that brings user data."""

    PUBLIC = "public"
    PRIVATE = "private"
    ENCRYPTED = "encrypted"
    PRESENCE = "presence"


@dataclass(frozen=True, slots=True)
class ChannelType:
    """What a channel name's prefix says about it."""

    access: Access
    cached: bool

    @property
    def requires_auth(self) -> bool:
        return self.access is not Access.PUBLIC

    @property
    def is_presence(self) -> bool:
        return self.access is Access.PRESENCE

    @property
    def accepts_client_events(self) -> bool:
        """Client events go on private and presence channels only (never encrypted ones)."""
        return self.access in (Access.PRIVATE, Access.PRESENCE)


# Longest prefixes first: the first match is the right one.
_PREFIXES: tuple[tuple[str, ChannelType], ...] = (
    ("private-encrypted-cache-", ChannelType(Access.ENCRYPTED, True)),
    ("private-encrypted-", ChannelType(Access.ENCRYPTED, False)),
    ("private-cache-", ChannelType(Access.PRIVATE, True)),
    ("private-", ChannelType(Access.PRIVATE, False)),
    ("presence-cache-", ChannelType(Access.PRESENCE, True)),
    ("presence-", ChannelType(Access.PRESENCE, False)),
    ("cache-", ChannelType(Access.PUBLIC, True)),
)
_PUBLIC = ChannelType(Access.PUBLIC, False)


def channel_type(name: str) -> ChannelType:
    """The type of channel ``name`` denotes, from its anchored prefix."""
    for prefix, kind in _PREFIXES:
        if name.startswith(prefix):
            return kind
    return _PUBLIC


def channel_name_error(name: object) -> str | None:
    """Why ``name`` is not a valid channel name, or None when it is."""
    if not isinstance(name, str) or not name:
        return "channel name must be a non-empty string"
    if len(name) > MAX_CHANNEL_NAME_LENGTH:
        return f"channel name is longer than {MAX_CHANNEL_NAME_LENGTH} characters"
    if name.startswith(SERVER_TO_USER_PREFIX):  # a signed-in user's own channel
        if not _NAME_RE.fullmatch(name[len(SERVER_TO_USER_PREFIX):]):
            return (f"after {SERVER_TO_USER_PREFIX}, the user id must be non-empty and contain "
                    "only A-Z a-z 0-9 _ - = @ , . ;")
        return None
    if not _NAME_RE.fullmatch(name):
        return "channel name may contain only A-Z a-z 0-9 _ - = @ , . ;"
    return None


def event_name_error(name: object) -> str | None:
    """Why ``name`` is not a valid event name, or None when it is."""
    if not isinstance(name, str) or not name:
        return "event name must be a non-empty string"
    if len(name) > MAX_EVENT_NAME_LENGTH:
        return f"event name is longer than {MAX_EVENT_NAME_LENGTH} characters"
    return None
