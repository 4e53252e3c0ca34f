"""Yes-or-no settings, spelled the ways people spell them, the same in every process.

``true``/``false``, ``1``/``0``, ``yes``/``no`` and ``on``/``off``, in any case; an empty value
is no. Anything else is refused with a reason that lists the spellings, never read as no.
"""

from __future__ import annotations

TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off", "")
SPELLINGS = "true/false, 1/0, yes/no or on/off"


def flag_error(raw: object, name: str) -> str | None:
    """Why ``raw`` is not a yes-or-no value for the setting ``name``, or None."""
    if isinstance(raw, bool) or str(raw).strip().lower() in TRUE + FALSE:
        return None
    return f"{name} must be true or false ({SPELLINGS}), got {str(raw)[:40]!r}"


def is_on(raw: object) -> bool:
    """Whether a value :func:`flag_error` accepts says yes."""
    return raw if isinstance(raw, bool) else str(raw).strip().lower() in TRUE
