"""Socket-id rules, shared by the broadcaster's API and the webapp.

A socket id is two runs of ASCII digits joined by a dot (``1234.5678``), as Pusher server SDKs
expect; each run is capped so that no caller stores or relays an unbounded value.
"""

from __future__ import annotations

import re

MAX_SOCKET_ID_PART_DIGITS = 20

_SOCKET_ID_RE = re.compile(
    rf"[0-9]{{1,{MAX_SOCKET_ID_PART_DIGITS}}}\.[0-9]{{1,{MAX_SOCKET_ID_PART_DIGITS}}}")


def socket_id_error(value: object, name: str = "socket_id") -> str | None:
    """Why ``value`` is not a usable socket id (the reason names it ``name``), or None."""
    if isinstance(value, str) and _SOCKET_ID_RE.fullmatch(value):
        return None
    shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
    return (f"{name} must look like 1234.5678 (digits, a dot, digits; at most "
            f"{MAX_SOCKET_ID_PART_DIGITS} digits each side), got {shown}")
