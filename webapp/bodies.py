"""Request bodies from untrusted callers: a JSON object, or a 400 saying so."""

from __future__ import annotations

from typing import Any

from flask import abort, request


def json_object() -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type; 400 for anything else."""
    body = request.get_json(force=True, silent=True)  # None for any JSON the app refuses
    if not isinstance(body, dict):
        abort(400, description="request body must be a JSON object")
    return body
