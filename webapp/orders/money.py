"""Money as integer cents, shown as a string with exactly two decimals."""

from __future__ import annotations


def format_cents(cents: int) -> str:
    """``123456`` -> ``"1234.56"``; exact, no float ever involved."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"
