"""The JSON API: login, products, orders and status transitions. Every error is JSON."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request
from flask.typing import ResponseReturnValue

from shared.sockets import socket_id_error

from . import idempotency
from .auth import authenticate, require_admin, require_user, visible_order
from .bodies import json_object
from .extensions import csrf, db
from .models import ConcurrentChange, Order, Product
from .order_search import BadFilter, order_list
from .orders import OrderError, place_order, place_order_once, stale_view_error
from .outbox import SOCKET_ID_HEADER
from .pagination import BadPage
from .serializers import ORDER_DETAIL, order_dict, product_dict
from .status import OrderStatus
from .tokens import issue_token

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
    user = require_user()
    user.end_sessions()
    db.session.commit()
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
        problem = stale_view_error(order, value)
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
        order.record_transition(target, admin, notes or None)
    except ConcurrentChange as exc:
        abort(409, description=str(exc))
    except ValueError as exc:  # an unknown status or an InvalidTransition
        abort(422, description=str(exc))
    # The answer is read before the commit, from what was just flushed: after it, every
    # attribute would be expired and loaded again.
    answer = order_dict(order, detail=True)
    db.session.commit()
    return jsonify(order=answer)
