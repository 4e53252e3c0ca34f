"""Which browser origins may open a socket: host patterns with ``*`` wildcards, as Reverb has.

``*`` alone allows everyone (and requests without an Origin header); otherwise the Origin's
host must match one pattern, e.g. ``*.example.com`` or ``localhost``.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from urllib.parse import urlsplit


def origin_error(origin: str | None, patterns: tuple[str, ...]) -> str | None:
    """Why a handshake's ``Origin`` header does not pass the app's allowed origins, or None."""
    if "*" in patterns:
        return None
    if not origin:
        return ("this client sent no Origin header; with REVERB_ALLOWED_ORIGINS set, only "
                "browsers on those hosts may connect ('*' allows any client)")
    try:
        host = urlsplit(origin).hostname
    except ValueError:
        host = None
    if host and any(fnmatchcase(host, pattern.lower()) for pattern in patterns):
        return None
    return f"origin {origin[:200]} is not allowed; add its host to REVERB_ALLOWED_ORIGINS"
