"""URL converters: ``<id:name>`` in routes."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

from ..orders.ids import MAX_ID


class IdConverter(IntegerConverter):
    """``<id:name>`` in routes: an id the database can hold; anything else is a 404."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 (werkzeug's signature)
        super().__init__(map, min=1, max=MAX_ID)
