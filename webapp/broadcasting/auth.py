"""``POST /broadcasting/auth`` and ``/broadcasting/user-auth``, as Laravel answers them.

pusher-js posts ``socket_id`` and ``channel_name`` as a form; the caller is known from the
session cookie (with the CSRF header) or a bearer token. Denied means 403.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from shared.channels import Access, channel_name_error, channel_type
from shared.payloads import dumps
from shared.signatures import sign_channel, sign_user
from shared.sockets import socket_id_error

from ..accounts.callers import request_user
from ..bodies import json_object
from ..extensions import csrf
from ..orders.models import User
from .channels import rules

bp = Blueprint("broadcasting", __name__, url_prefix="/broadcasting")
csrf.exempt(bp)  # checked in request_user() for cookie callers only


def _field(name: str) -> str:
    value = (json_object() if request.is_json else request.form).get(name)
    if not isinstance(value, str) or not value:
        abort(400, description=f"{name} is required")
    return value


def _socket_id() -> str:
    socket_id = _field("socket_id")
    problem = socket_id_error(socket_id)
    if problem:
        abort(400, description=problem)
    return socket_id


def _caller() -> User:
    user = request_user()
    if user is None:
        abort(403, description="sign in before subscribing to private or presence channels")
    return user


@bp.post("/auth")
def auth() -> ResponseReturnValue:
    user = _caller()
    socket_id = _socket_id()
    channel = _field("channel_name")
    problem = channel_name_error(channel)
    if problem:
        abort(400, description=problem)
    access = channel_type(channel).access
    if access is Access.PUBLIC:
        abort(400, description=f"{channel} is a public channel; it needs no authorization")
    if access is Access.ENCRYPTED:
        abort(403, description="encrypted channels are not enabled in this app")
    answer = rules.authorize(user, channel)
    if not answer:
        abort(403, description=f"user {user.id} may not subscribe to {channel}")
    key, secret = current_app.config["REVERB_APP_KEY"], current_app.config["REVERB_APP_SECRET"]
    if access is Access.PRESENCE:
        user_info = answer if isinstance(answer, dict) else {}
        channel_data = dumps({"user_id": str(user.id), "user_info": user_info})
        return jsonify(auth=sign_channel(key, secret, socket_id, channel, channel_data),
                       channel_data=channel_data)
    return jsonify(auth=sign_channel(key, secret, socket_id, channel))


@bp.post("/user-auth")
def user_auth() -> ResponseReturnValue:
    user = _caller()
    socket_id = _socket_id()
    user_data = dumps({"id": str(user.id), "user_info": {"name": user.name}})
    key, secret = current_app.config["REVERB_APP_KEY"], current_app.config["REVERB_APP_SECRET"]
    return jsonify(auth=sign_user(key, secret, socket_id, user_data), user_data=user_data)
