"""``flask --app webapp seed``: the schema (every migration) and the demo data. Safe to run
again: it only adds what is missing, and demo orders only into an empty orders table."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from .accounts.passwords import set_password
from .extensions import db
from .orders.models import Order, OrderItem, OrderStatusHistory, User
from .orders.products import Product
from .orders.status import OrderStatus
from .orders.times import utcnow
from .schema import current_revision, upgrade_schema

DEMO_PASSWORD = "password"
USERS = [
    ("Ada Admin", "admin@example.com", True),
    ("Alice Customer", "alice@example.com", False),
    ("Bob Customer", "bob@example.com", False),
]
PRODUCTS = [
    ("Wireless Mouse", 2499, 120),
    ("Mechanical Keyboard", 8900, 60),
    ("USB-C Hub", 3950, 80),
    ("27-inch Monitor", 22999, 25),
    ("Laptop Stand", 4500, 40),
    ("Noise-Cancelling Headphones", 17900, 30),
]
# (customer email, [(product name, quantity)], path of statuses after pending)
ORDERS = [
    ("alice@example.com", [("Wireless Mouse", 1), ("USB-C Hub", 2)], []),
    ("alice@example.com", [("Mechanical Keyboard", 1)], ["paid"]),
    ("bob@example.com", [("27-inch Monitor", 2), ("Laptop Stand", 1)], ["paid", "processing"]),
    ("bob@example.com", [("Noise-Cancelling Headphones", 1)], ["paid", "processing", "shipped"]),
    ("alice@example.com", [("Laptop Stand", 1), ("Wireless Mouse", 2), ("USB-C Hub", 1),
                           ("Mechanical Keyboard", 1)],
     ["paid", "processing", "shipped", "delivered"]),
    ("bob@example.com", [("USB-C Hub", 1)], ["cancelled"]),
]


def seed_database() -> None:
    upgrade_schema()
    users = {}
    for name, email, is_admin in USERS:
        user = db.session.scalar(db.select(User).where(User.email == email))
        if user is None:
            user = User(name=name, email=email, is_admin=is_admin)
            set_password(user, DEMO_PASSWORD)  # a new user: no sessions to end
            db.session.add(user)
        users[email] = user
    products = {}
    for name, price_cents, stock in PRODUCTS:
        product = db.session.scalar(db.select(Product).where(Product.name == name))
        if product is None:
            product = Product(name=name, price_cents=price_cents, stock=stock)
            db.session.add(product)
        products[name] = product
    db.session.flush()
    if db.session.scalar(db.select(db.func.count(Order.id))) == 0:
        admin = users["admin@example.com"]
        for age, (email, lines, path) in enumerate(reversed(ORDERS)):
            # An order still pending is recent: older ones the worker has cancelled
            # (PENDING_ORDER_TTL).
            placed_ago = timedelta(hours=age * 5 + 1) if path else timedelta(minutes=5)
            _demo_order(users[email], admin, products, lines, path, placed_ago)
    db.session.commit()


def _demo_order(customer, admin, products, lines, path, placed_ago: timedelta) -> None:
    """A past order and its history, written directly: seeding is not news to broadcast."""
    at = utcnow() - placed_ago
    order = Order(user=customer, status=OrderStatus.PENDING, created_at=at, updated_at=at)
    for product_name, quantity in lines:
        product = products[product_name]
        order.items.append(OrderItem(product=product, quantity=quantity,
                                     unit_price_cents=product.price_cents))
    order.total_cents = sum(item.line_total_cents for item in order.items)
    order.history.append(OrderStatusHistory(to_status=OrderStatus.PENDING,
                                            changed_by=customer, at=at))
    for step, status in enumerate(path, start=1):
        step_at = at + timedelta(minutes=20 * step)
        order.history.append(OrderStatusHistory(
            from_status=order.status, to_status=OrderStatus(status), changed_by=admin, at=step_at))
        order.status = OrderStatus(status)
        order.updated_at = step_at
    db.session.add(order)
    db.session.flush()
    order.assign_number()


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Apply the migrations, add the demo data, then print where to sign in."""
    seed_database()
    click.echo(f"Database schema at revision {current_revision()}.")
    url = f"http://127.0.0.1:{current_app.config['WEB_PORT']}"
    click.echo(f"Resound is seeded. Open {url} and sign in (password: {DEMO_PASSWORD}):")
    for name, email, is_admin in USERS:
        click.echo(f"  {email:<20} {'admin: orders dashboard' if is_admin else name}")
    click.echo("Sign in as the admin in one tab and as alice in another, then change an order.")
