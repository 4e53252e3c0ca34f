"""The webapp's JSON API as the tests call it, over real HTTP: log in, place and move orders.

The expected broadcast payload is built here from the API's answer and the labels in DESIGN.md,
not from the webapp's own serializer, so the two are checked against each other.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

# The demo logins and the status labels, as DESIGN.md gives them: the tests' oracle.
PASSWORD = "password"
ADMIN, ALICE, BOB = "admin@example.com", "alice@example.com", "bob@example.com"
LABELS = {
    "pending": "Pending Payment",
    "paid": "Paid",
    "processing": "Processing",
    "shipped": "Shipped",
    "delivered": "Delivered",
    "cancelled": "Cancelled",
    "refunded": "Refunded",
}


class ApiError(AssertionError):
    """The webapp answered with an unexpected status; the message holds its JSON reason."""


class WebappApi:
    """Calls to one running webapp at ``base_url``."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def request(self, method: str, path: str, token: str | None = None,
                body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base_url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json",
                     **({"Authorization": f"Bearer {token}"} if token else {}),
                     **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise ApiError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from None

    def login(self, email: str) -> tuple[str, dict[str, Any]]:
        """The bearer token and user of a seeded account."""
        answer = self.request("POST", "/api/login", body={"email": email, "password": PASSWORD})
        return answer["token"], answer["user"]

    def place_order(self, token: str, quantities: list[int]) -> dict[str, Any]:
        """A new order with the first products, in ``quantities``."""
        products = self.request("GET", "/api/products", token)["products"]
        items = [{"product_id": p["id"], "quantity": q}
                 for p, q in zip(products[:len(quantities)], quantities, strict=True)]
        return self.request("POST", "/api/orders", token, {"items": items})["order"]

    def transition(self, token: str, order_id: int, status: str,
                   socket_id: str | None = None) -> dict[str, Any]:
        """An admin moves an order; ``socket_id`` goes in ``X-Socket-ID`` (Echo's toOthers)."""
        headers = {"X-Socket-ID": socket_id} if socket_id else None
        path = f"/api/orders/{order_id}/transition"
        return self.request("POST", path, token, {"status": status}, headers)["order"]


def order_payload(order: dict[str, Any], previous_status: str | None,
                  changed_by: str) -> dict[str, Any]:
    """The seed payload of ``order.created`` / ``order.status.updated`` for an API order."""
    return {
        "order_id": order["id"],
        "order_number": order["order_number"],
        "current_status": order["status"],
        "current_status_label": LABELS[order["status"]],
        "previous_status": previous_status,
        "changed_by": changed_by,
        "total": order["total"],
        "updated_at": order["updated_at"],
        "created_at": order["created_at"],
        "user": order["user"],
        "items_count": len(order["items"]),
        "items_summary": [{"product_name": item["product_name"], "quantity": item["quantity"]}
                          for item in order["items"][:3]],
    }
