"""Database ids from untrusted input: positive and within SQL's 64-bit integers, or refused."""

from __future__ import annotations

import re

MAX_ID = 2**63 - 1
_DIGITS_RE = re.compile(r"[0-9]{1,19}")


def is_valid_id(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and 1 <= value <= MAX_ID)


def parse_id(text: str) -> int | None:
    """``text`` as an id, or None when it is not one."""
    if not _DIGITS_RE.fullmatch(text):
        return None
    value = int(text)
    return value if is_valid_id(value) else None
