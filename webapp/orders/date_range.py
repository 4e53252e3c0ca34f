"""A range of creation dates: ``?from=2026-12-01&to=2026-12-07``, both days included, in UTC
(the database's time), either end optional."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select

from .models import Order

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _day(args: Mapping[str, str], name: str) -> date | None:
    text = args.get(name, "").strip()
    if not text:
        return None
    try:
        if not _DATE_RE.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} must be a date as YYYY-MM-DD, such as 2026-12-07, "
                         f"not {text[:40]!r}") from None


@dataclass(frozen=True, slots=True)
class DateRange:
    start: date | None  # the first day shown
    end: date | None  # the last day shown

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> DateRange:
        """``from`` and ``to``; a ValueError saying what is wrong with them otherwise."""
        start, end = _day(args, "from"), _day(args, "to")
        if start and end and start > end:
            raise ValueError(f"from ({start}) is after to ({end}); swap them")
        return cls(start, end)

    def apply(self, query: Select) -> Select:
        """``query`` limited to orders created in the range."""
        if self.start is not None:
            query = query.where(Order.created_at >= datetime.combine(self.start, time()))
        if self.end is not None and self.end < date.max:
            after = datetime.combine(self.end + timedelta(days=1), time())
            query = query.where(Order.created_at < after)
        return query

    def as_dict(self) -> dict[str, str]:
        """As in the query string (empty for an open end)."""
        return {"from": self.start.isoformat() if self.start else "",
                "to": self.end.isoformat() if self.end else ""}
