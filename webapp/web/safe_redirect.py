"""Where a sign-in may send the user next: a path on this site, never another site."""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_NEXT_LENGTH = 2000


def local_path(value: object) -> str | None:
    """``value`` when it is a path on this site (``/orders/5?tab=x``), else None.

    Refused: anything not starting with a single ``/`` (``//evil`` is another host), any
    backslash (browsers read ``/\\evil`` as ``//evil``), a scheme or host, and control characters
    or spaces (browsers drop tabs and newlines, which could turn ``/\\t/evil`` into ``//evil``).
    """
    if not isinstance(value, str) or not value or len(value) > MAX_NEXT_LENGTH:
        return None
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value
