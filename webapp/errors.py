"""Errors as JSON ``{"error": reason}`` for API callers; pages keep Flask's HTML errors."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/broadcasting/", "/vendor/")


def wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES) or (
        request.accept_mimetypes.best == "application/json")


def _http_error(exc: HTTPException) -> Response | HTTPException:
    if not wants_json():
        return exc
    response = jsonify(error=exc.description)
    response.status_code = exc.code or 500
    return response


def _unexpected_error(exc: Exception) -> Response | HTTPException:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _http_error(InternalServerError(description="internal error; see the server log"))


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
