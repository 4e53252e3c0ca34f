"""Plain HTTP request and response values passed between the listener and the API router.

The listener parses bytes into an :class:`HttpRequest` (with httptools) and serializes the
:class:`HttpResponse` it gets back; the router never sees a socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from shared.payloads import dumpb, loads


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str  # percent-decoded path, without the query string
    query: str  # raw query string, without the leading "?"
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: bytes = b""


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(status: int, value: Any) -> HttpResponse:
    """A JSON response; errors use ``{"error": "<what was wrong and what to do>"}``."""
    return HttpResponse(status, dumpb(value))


def error_response(status: int, reason: str) -> HttpResponse:
    return json_response(status, {"error": reason})


def said(response: HttpResponse) -> str:
    """The status and reason of an error response as a log line shows them: ``401: ...``."""
    try:
        reason = loads(response.body).get("error")
    except (ValueError, AttributeError):
        reason = None
    return f"{response.status}: {reason}" if isinstance(reason, str) else str(response.status)


def serialize_response(response: HttpResponse, keep_alive: bool, head_only: bool = False) -> bytes:
    """The HTTP/1.1 bytes of ``response``; ``head_only`` for HEAD requests (no body)."""
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        *(f"{name}: {value}" for name, value in response.headers),
    ]
    if not keep_alive:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body
