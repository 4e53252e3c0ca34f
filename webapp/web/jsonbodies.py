"""JSON decoding for every request body: strict Unicode, bounded depth.

Python's ``json`` accepts ``"\\ud800"`` (and, from bytes, UTF-8-encoded surrogates) and yields a
``str`` holding a lone UTF-16 surrogate, which no codec can encode again: the database driver, a
log handler or ``jsonify`` then fails with a 500. Flask decodes every ``request.get_json()`` through
``app.json.loads``, so refusing such text there turns it into a 400 for all JSON input at once.
"""

from __future__ import annotations

import re
from typing import Any

from flask.json.provider import DefaultJSONProvider

# After decoding, a valid surrogate pair is one astral code point: any surrogate left is lone.
_SURROGATE = re.compile("[\ud800-\udfff]")


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, except that ``loads`` raises ``ValueError`` for lone surrogates
    and for nesting too deep to decode (Flask answers a ``ValueError`` with a 400)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        problem = lone_surrogate_error(value)
        if problem:
            raise ValueError(problem)
        return value


def lone_surrogate_error(value: Any) -> str | None:
    """Why ``value`` (decoded JSON) cannot be encoded as UTF-8, or None when it can."""
    pending = [value]
    while pending:  # a loop, not recursion: the value may be nested about 1000 deep
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return "JSON text holds a lone UTF-16 surrogate; send valid Unicode"
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None
