"""Products and their stock: taken when an order is placed, given back when it is cancelled.
Both are UPDATEs relative to the current stock, so concurrent orders of one product never
overwrite each other, and both go by product id, so two orders never deadlock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Integer, String, update
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

if TYPE_CHECKING:
    from .models import OrderItem


class OutOfStock(ValueError):
    """Not enough of a product is left; the message says how much."""


class Product(db.Model):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    price_cents: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer, default=0)


def take_stock(product: Product, quantity: int) -> None:
    """Decrement stock only if enough is left (a conditional UPDATE, safe under concurrency);
    :class:`OutOfStock` otherwise."""
    taken = db.session.execute(
        update(Product)
        .where(Product.id == product.id, Product.stock >= quantity)
        .values(stock=Product.stock - quantity)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not taken:
        db.session.refresh(product)
        raise OutOfStock(
            f"not enough stock for {product.name!r}: {product.stock} left, {quantity} asked"
        )


def return_stock(items: Iterable[OrderItem]) -> None:
    """Put ``items`` back in stock: one UPDATE per product, in product id order."""
    quantities: Counter[int] = Counter()
    for item in items:
        quantities[item.product_id] += item.quantity
    table = Product.__table__
    for product_id, quantity in sorted(quantities.items()):
        db.session.execute(update(table).where(table.c.id == product_id)
                           .values(stock=table.c.stock + quantity))
