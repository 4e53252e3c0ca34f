"""JSON shapes of the domain objects, shared by the API and the pages."""

from __future__ import annotations

from ..orders.models import Order, OrderStatusHistory
from ..orders.money import format_cents
from ..orders.products import Product
from ..orders.records import OrderRecord, StepRecord
from ..orders.status import transition_permission_error
from ..orders.times import iso8601


def product_dict(product: Product) -> dict:
    return {"id": product.id, "name": product.name, "price": format_cents(product.price_cents),
            "stock": product.stock}


def order_dict(order: Order | OrderRecord, detail: bool = False, for_admin: bool = True) -> dict:
    """An order; ``detail`` adds its items, status history, ``final`` and the next statuses
    the caller may ask for (``for_admin`` False: a customer's, only cancelling when pending)."""
    data = {
        "id": order.id,
        "order_number": order.order_number,
        "status": order.status.value,
        "status_label": order.status.label,
        "total": format_cents(order.total_cents),
        "user": {"id": order.user.id, "name": order.user.name, "email": order.user.email},
        "items_count": len(order.items),
        "created_at": iso8601(order.created_at),
        "updated_at": iso8601(order.updated_at),
    }
    if detail:
        data["items"] = [
            {"product_id": item.product_id, "product_name": item.product_name,
             "quantity": item.quantity, "unit_price": format_cents(item.unit_price_cents),
             "line_total": format_cents(item.line_total_cents)}
            for item in order.items
        ]
        data["history"] = [history_dict(h) for h in order.history]
        data["allowed_transitions"] = [
            {"status": s.value, "label": s.label} for s in order.status.allowed_transitions
            if transition_permission_error(for_admin, order.status, s) is None
        ]
        data["final"] = order.status.is_final
    return data


def history_dict(entry: OrderStatusHistory | StepRecord) -> dict:
    return {
        "from": entry.from_status.value if entry.from_status else None,
        "from_label": entry.from_status.label if entry.from_status else None,
        "to": entry.to_status.value,
        "to_label": entry.to_status.label,
        "changed_by": entry.changed_by_name,
        "notes": entry.notes,
        "at": iso8601(entry.at),
    }
