"""What a list of orders shows for a query string: the page's orders, counts, filter, dates,
sort, page."""

from __future__ import annotations

from collections.abc import Mapping

from ..orders.search import OrderView, matching_orders, status_counts
from .pagination import PageRequest, paginate
from .serializers import order_dict


def order_list(args: Mapping[str, str], owner_id: int | None,
               per_page_allowed: bool = False) -> dict:
    """What a list of orders shows for the query ``args``: ``orders`` (the page's, newest
    first unless ``sort`` says otherwise), ``counts``, ``filter``, ``dates``, ``sort`` and
    ``page``. Raises BadFilter, BadPage or PageOutOfRange."""
    view = OrderView.parse(args)
    page = PageRequest.parse(args, per_page_allowed)
    orders, page_info = paginate(matching_orders(view, owner_id), page)
    return {"orders": [order_dict(order) for order in orders],
            "counts": status_counts(owner_id), "filter": view.filter.as_dict(),
            "dates": view.dates.as_dict(), "sort": view.sort.value, "page": page_info}
