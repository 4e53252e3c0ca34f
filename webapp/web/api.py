"""The JSON API: login, products, orders and status transitions. Every error is JSON."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request
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
from ..orders.models import ConcurrentChange, Order
from ..orders.placing import OrderError
from ..orders.products import Product
from ..orders.search import BadFilter
from ..orders.status import OrderStatus
from . import idempotency
from .access import visible_order
from .order_lists import order_list
from .pagination import BadPage
from .placing import place_order, place_order_once
from .serializers import ORDER_DETAIL, order_dict, product_dict

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
    """A page of orders (admins: all; customers: their own), with ``?status``, ``q``, ``page``
    and ``per_page``; ``counts`` per status ignore ``q``."""
    user = require_user()
    try:
        answer = order_list(request.args, None if user.is_admin else user.id,
                            per_page_allowed=True)
    except (BadFilter, BadPage) as exc:
        abort(400, description=str(exc))
    del answer["filter"]
    return jsonify(answer)


@bp.get("/orders/<id:order_id>")
def show_order(order_id: int) -> ResponseReturnValue:
    user = require_user()
    return jsonify(order=order_dict(visible_order(user, order_id, ORDER_DETAIL), detail=True))


@bp.post("/orders")
def create_order() -> ResponseReturnValue:
    """Place an order; with an ``Idempotency-Key`` header, at most once per key."""
    user = require_user()
    items = json_object().get("items")
    key = request.headers.get(idempotency.HEADER)
    try:
        if key is None:
            order = place_order(user, items)
            return jsonify(order=order_dict(order, detail=True)), 201
        problem = idempotency.key_error(key)
        if problem:
            abort(400, description=problem)
        answer = place_order_once(user, key, items)
    except (OrderError, idempotency.KeyReused) as exc:
        abort(422, description=str(exc))
    return jsonify(answer.body), answer.status


def _check_expected_status(order: Order, value: object) -> None:
    """409 when ``value``, the status the caller saw, is no longer the order's (a stale view)."""
    try:
        problem = order.stale_view_error(value)
    except ValueError as exc:
        abort(422, description=f"expected_status: {exc}")
    if problem:
        abort(409, description=problem)


@bp.post("/orders/<id:order_id>/transition")
def transition(order_id: int) -> ResponseReturnValue:
    """Move the order to ``status``; an optional ``expected_status`` guards against stale views."""
    admin = require_admin()
    order = visible_order(admin, order_id, ORDER_DETAIL)
    body = json_object()
    notes = body.get("notes")
    if notes is not None and not isinstance(notes, str):
        abort(422, description="notes must be a string")
    try:
        target = OrderStatus.parse(body.get("status"))
        _check_expected_status(order, body.get("expected_status"))
        write(order.transition_to(target, admin, notes or None))
    except ConcurrentChange as exc:
        abort(409, description=str(exc))
    except ValueError as exc:  # an unknown status or an InvalidTransition
        abort(422, description=str(exc))
    # The answer is read before the commit, from what was just flushed: after it, every
    # attribute would be expired and loaded again.
    answer = order_dict(order, detail=True)
    db.session.commit()
    return jsonify(order=answer)
