"""Pages of a query's rows: ``?page=<n>`` (1-based) and ``?per_page=<n>``, read strictly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func

from ..extensions import db

PER_PAGE = 25
MAX_PER_PAGE = 100
MAX_PAGE = 10**6


class BadPage(ValueError):
    """A page or page size that is not a number in range (answered as 400)."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    number: int
    per_page: int = PER_PAGE

    @classmethod
    def parse(cls, args: Mapping[str, str], per_page_allowed: bool = False) -> PageRequest:
        """The page ``args`` ask for; ``per_page`` is read only where ``per_page_allowed``."""
        number = _number(args.get("page", "1"), "page", MAX_PAGE)
        per_page = PER_PAGE
        if per_page_allowed:
            per_page = _number(args.get("per_page", str(PER_PAGE)), "per_page", MAX_PER_PAGE)
        return cls(number, per_page)


def _number(text: str, name: str, most: int) -> int:
    if not (text.isascii() and text.isdecimal() and len(text) <= 7) or not 1 <= int(text) <= most:
        raise BadPage(f"{name} must be a whole number from 1 to {most}, not {text!r}")
    return int(text)


def paginate(query: Select, page: PageRequest) -> tuple[list[Any], dict[str, int]]:
    """The rows of ``query`` on ``page`` (LIMIT/OFFSET) and the contract's ``page`` dict.
    A page past the last is empty, not an error."""
    total = db.session.scalar(
        db.select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(db.session.scalars(
        query.limit(page.per_page).offset((page.number - 1) * page.per_page)))
    pages = max(1, -(-total // page.per_page))
    return rows, {"number": page.number, "pages": pages, "total": total,
                  "per_page": page.per_page}
