"""Timestamps: naive UTC in the database, ISO 8601 with an offset outside."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Naive UTC, as the database stores it."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso8601(moment: datetime) -> str:
    """``2026-11-23T10:00:00+00:00``; naive datetimes from the database are UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")
