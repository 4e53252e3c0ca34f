"""What a list of orders shows for a query string: the page's orders, counts, filter, page."""

from __future__ import annotations

from collections.abc import Mapping

from ..orders.search import OrderFilter, matching_orders, status_counts
from .pagination import PageRequest, paginate
from .serializers import order_dict


def order_list(args: Mapping[str, str], owner_id: int | None,
               per_page_allowed: bool = False) -> dict:
    """What a list of orders shows for the query ``args``: ``orders`` (the page's, newest
    first), ``counts``, ``filter`` and ``page``. Raises BadFilter or BadPage."""
    order_filter = OrderFilter.parse(args)
    page = PageRequest.parse(args, per_page_allowed)
    orders, page_info = paginate(matching_orders(order_filter, owner_id), page)
    return {"orders": [order_dict(order) for order in orders],
            "counts": status_counts(owner_id), "filter": order_filter.as_dict(),
            "page": page_info}
