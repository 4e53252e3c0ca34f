"""The JSON API: login, products, orders and status transitions. Every error is JSON."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Select
from sqlalchemy.orm import selectinload

from shared.sockets import socket_id_error

from .auth import authenticate, require_admin, require_user, visible_order
from .bodies import json_object
from .extensions import csrf, db
from .models import ConcurrentChange, Order, OrderItem, Product
from .orders import OrderError, place_order
from .outbox import SOCKET_ID_HEADER
from .serializers import order_dict, product_dict
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


def _order_query() -> Select:
    return db.select(Order).options(
        selectinload(Order.user), selectinload(Order.items).selectinload(OrderItem.product)
    )


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
    user = require_user()
    query = _order_query().order_by(Order.id.desc())
    if not user.is_admin:
        query = query.where(Order.user_id == user.id)
    return jsonify(orders=[order_dict(o) for o in db.session.scalars(query)])


@bp.get("/orders/<id:order_id>")
def show_order(order_id: int) -> ResponseReturnValue:
    user = require_user()
    return jsonify(order=order_dict(visible_order(user, order_id), detail=True))


@bp.post("/orders")
def create_order() -> ResponseReturnValue:
    user = require_user()
    body = json_object()
    try:
        order = place_order(user, body.get("items"))
    except OrderError as exc:
        abort(422, description=str(exc))
    return jsonify(order=order_dict(order, detail=True)), 201


def _check_expected_status(order: Order, value: object) -> None:
    """409 when ``value``, the status the caller saw, is no longer the order's (a stale view)."""
    if value is None:
        return
    try:
        expected = OrderStatus.parse(value)
    except ValueError as exc:
        abort(422, description=f"expected_status: {exc}")
    if expected is not order.status:
        abort(409, description=f"order {order.id} is {order.status.value} now, not "
                               f"{expected.value} as you saw it; reload it and try again")


@bp.post("/orders/<id:order_id>/transition")
def transition(order_id: int) -> ResponseReturnValue:
    """Move the order to ``status``; an optional ``expected_status`` guards against stale views."""
    admin = require_admin()
    order = visible_order(admin, order_id)
    body = json_object()
    notes = body.get("notes")
    if notes is not None and not isinstance(notes, str):
        abort(422, description="notes must be a string")
    try:
        target = OrderStatus.parse(body.get("status"))
        _check_expected_status(order, body.get("expected_status"))
        order.transition_to(target, admin, notes or None)
    except ConcurrentChange as exc:
        abort(409, description=str(exc))
    except ValueError as exc:  # an unknown status or an InvalidTransition
        abort(422, description=str(exc))
    return jsonify(order=order_dict(order, detail=True))
