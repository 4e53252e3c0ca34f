"""Which browser origins may open a socket: host patterns with ``*`` wildcards, as Reverb has.

``*`` alone allows everyone (and requests without an Origin header); otherwise the Origin's
host must match one pattern, e.g. ``*.example.com`` or ``localhost``.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from urllib.parse import urlsplit


def origin_allowed(origin: str | None, patterns: tuple[str, ...]) -> bool:
    """Whether a handshake's ``Origin`` header passes the app's allowed origins."""
    if "*" in patterns:
        return True
    if not origin:
        return False
    try:
        host = urlsplit(origin).hostname
    except ValueError:
        return False
    if not host:
        return False
    return any(fnmatchcase(host, pattern.lower()) for pattern in patterns)
