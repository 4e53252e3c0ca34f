"""Errors as JSON ``{"error": reason}`` for API callers, as pages in the app's layout
(``templates/error.html``, with a way back) for people. A 500 never shows a traceback."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/broadcasting/", "/vendor/")
INTERNAL_ERROR = "internal error; see the server log"

# What a person reads on the page, by status code; the description says what went wrong.
TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    405: "Not available that way",
    409: "Changed meanwhile",
    413: "Too large",
    429: "Too many attempts",
    500: "Something went wrong",
}
CSRF_MESSAGE = ("This form was out of date or came from another site, so nothing was done. "
                "Go back, reload the page and try again.")
SERVER_ERROR_MESSAGE = ("Something went wrong on our side and nothing was changed. "
                        "Try again in a moment; if it keeps happening, tell the site's admin.")


def wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES) or (
        request.accept_mimetypes.best == "application/json")


def back_url() -> str:
    """Where the error page's "back" link goes: the user's home, or the sign-in page."""
    return url_for("pages.index")


def error_page(exc: HTTPException) -> Response:
    """``exc`` as ``error.html`` in the layout, with its status code and headers."""
    code = exc.code or 500
    if isinstance(exc, CSRFError):
        message = CSRF_MESSAGE
    elif code >= 500:
        message = SERVER_ERROR_MESSAGE
    else:
        message = exc.description or ""
    response = exc.get_response()
    try:
        html = render_template("error.html", code=code, title=TITLES.get(code, exc.name),
                               message=message, back_url=back_url())
    except Exception:  # e.g. the database is down: the layout cannot load the user
        log.exception("could not render the error page for %s %s", request.method, request.path)
        response.set_data(f"{code} {TITLES.get(code, exc.name)}: {message}")
        response.mimetype = "text/plain"
        return response
    response.set_data(html)
    response.mimetype = "text/html"
    return response


def _http_error(exc: HTTPException) -> Response:
    if not wants_json():
        return error_page(exc)
    response = jsonify(error=exc.description)
    response.status_code = exc.code or 500
    return response


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _http_error(InternalServerError(description=INTERNAL_ERROR))


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
