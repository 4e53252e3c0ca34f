"""The JSON API: login, products, orders and status transitions. Every error is JSON."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, abort, jsonify, request
from flask.typing import ResponseReturnValue

from shared.sockets import socket_id_error

from ..accounts.callers import require_admin, require_user
from ..accounts.passwords import authenticate
from ..accounts.sessions import end_sessions
from ..accounts.tokens import issue_token
from ..bodies import json_object
from ..broadcasting.outbox import SOCKET_ID_HEADER
from ..broadcasting.unit_of_work import commit, write
from ..extensions import csrf, db
from ..orders.models import ConcurrentChange, OrderMoves, User
from ..orders.placing import OrderError, find_customer
from ..orders.products import Product
from ..orders.search import BadFilter, OrderView
from ..orders.status import OrderStatus, transition_permission_error
from ..orders.summary import order_summary
from ..orders.times import utcnow
from . import bulk, idempotency
from .access import caller_and_order
from .order_export import TooManyRows, csv_text, export_rows
from .order_lists import order_list
from .pagination import BadPage, PageOutOfRange
from .placing import place_order, place_order_once
from .serializers import order_dict, product_dict

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)  # checked in request_user() for cookie callers only

@bp.before_request
def check_socket_id() -> None:
    value = request.headers.get(SOCKET_ID_HEADER)
    if value is not None:
        problem = socket_id_error(value, SOCKET_ID_HEADER)
        if problem:
            abort(400, description=problem)


@bp.post("/login")
def login() -> ResponseReturnValue:
    body = json_object()
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        abort(400, description="send {\"email\": \"...\", \"password\": \"...\"}")
    user = authenticate(email, password)
    if user is None:
        abort(401, description="wrong email or password")
    return jsonify(token=issue_token(user.id, user.session_epoch), user=user.to_dict())


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Sign the caller out everywhere: every session and token issued so far stops working."""
    commit(end_sessions(require_user()))
    return "", 204


@bp.get("/products")
def products() -> ResponseReturnValue:
    require_user()
    rows = db.session.scalars(db.select(Product).order_by(Product.id))
    return jsonify(products=[product_dict(p) for p in rows])


@bp.get("/orders")
def list_orders() -> ResponseReturnValue:
    """A page of orders (admins: all; customers: their own), with ``?status``, ``q``,
    ``from``, ``to``, ``sort``, ``page`` and ``per_page``; ``counts`` per status ignore
    ``q`` and the dates. A page past the last is a 404 naming the last."""
    user = require_user()
    try:
        answer = order_list(request.args, None if user.is_admin else user.id,
                            per_page_allowed=True)
    except (BadFilter, BadPage) as exc:
        abort(400, description=str(exc))
    except PageOutOfRange as exc:
        abort(404, description=str(exc))
    del answer["filter"], answer["dates"]
    return jsonify(answer)


@bp.get("/orders/export")
def export_orders() -> ResponseReturnValue:
    """The orders of the list ``GET /api/orders`` describes with the same query (all its pages)
    as a CSV file."""
    user = require_user()
    try:
        rows = export_rows(OrderView.parse(request.args), None if user.is_admin else user.id)
    except BadFilter as exc:
        abort(400, description=str(exc))
    except TooManyRows as exc:
        abort(422, description=str(exc))
    name = f"orders-{datetime.now(UTC):%Y-%m-%d-%H%M%S}.csv"
    return Response(csv_text(rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/summary")
def summary() -> ResponseReturnValue:
    """Admins' day at a glance: orders per status, orders and revenue today (UTC)."""
    require_admin()
    return jsonify(order_summary(utcnow()))


@bp.get("/orders/<id:order_id>")
def show_order(order_id: int) -> ResponseReturnValue:
    user, order = caller_and_order(order_id)
    return jsonify(order=order_dict(order, detail=True, for_admin=user.is_admin))


def _customer_of(user: User, body: dict) -> User | None:
    """The customer an admin places the order for (``user_id``), or None: the caller orders
    for herself. A customer who sends ``user_id`` at all is refused with 403."""
    if "user_id" not in body:
        return None
    if not user.is_admin:
        abort(403, description="only admins may place an order for a customer (user_id); "
                               "leave user_id out to order for yourself")
    return find_customer(body["user_id"])


@bp.post("/orders")
def create_order() -> ResponseReturnValue:
    """Place an order; with an ``Idempotency-Key`` header, at most once per key. An admin may
    place it for a customer with ``user_id``."""
    user = require_user()
    body = json_object()
    items = body.get("items")
    key = request.headers.get(idempotency.HEADER)
    try:
        customer = _customer_of(user, body)
        if key is None:
            order = place_order(customer or user, items, placed_by=user)
            return jsonify(order=order_dict(order, detail=True, for_admin=user.is_admin)), 201
        problem = idempotency.key_error(key)
        if problem:
            abort(400, description=problem)
        answer = place_order_once(user, key, items, customer)
    except (OrderError, idempotency.KeyReused) as exc:
        abort(422, description=str(exc))
    return jsonify(answer.body), answer.status


def _check_expected_status(order: OrderMoves, value: object) -> None:
    """409 when ``value``, the status the caller saw, is no longer the order's (a stale view)."""
    try:
        problem = order.stale_view_error(value)
    except ValueError as exc:
        abort(422, description=f"expected_status: {exc}")
    if problem:
        abort(409, description=problem)


@bp.post("/orders/<id:order_id>/transition")
def transition(order_id: int) -> ResponseReturnValue:
    """Move the order to ``status``; an optional ``expected_status`` guards against stale views.
    Admins move any order; a customer may only cancel her own pending order (else 403)."""
    user, order = caller_and_order(order_id)
    body = json_object()
    notes = body.get("notes")
    if notes is not None and not isinstance(notes, str):
        abort(422, description="notes must be a string")
    try:
        target = OrderStatus.parse(body.get("status"))
        _check_expected_status(order, body.get("expected_status"))
        forbidden = transition_permission_error(user.is_admin, order.status, target)
        if forbidden:
            abort(403, description=forbidden)
        write(order.transition_to(target, user, notes or None))
    except ConcurrentChange as exc:
        abort(409, description=str(exc))
    except ValueError as exc:  # an unknown status or an InvalidTransition
        abort(422, description=str(exc))
    # The answer is read before the commit, from what was just flushed: after it, every
    # attribute would be expired and loaded again.
    answer = order_dict(order, detail=True, for_admin=user.is_admin)
    db.session.commit()
    return jsonify(order=answer)


@bp.post("/orders/transition")
def transition_many() -> ResponseReturnValue:
    """Move many orders to ``status``, each on its own (see :mod:`.bulk`)."""
    admin = require_admin()
    try:
        request_body = bulk.BulkTransition.parse(json_object())
    except bulk.BadBulkRequest as exc:
        abort(422, description=str(exc))
    return jsonify(results=bulk.run(request_body, admin))
