"""What the server says to a socket outside channel events: small frames, built once."""

from __future__ import annotations

import secrets

from shared.payloads import dumpb, encode_message

from .requests import Answer, Unavailable

PONG = encode_message("pusher:pong", "{}")
PING = encode_message("pusher:ping", "{}")


def new_socket_id() -> str:
    """A fresh ``\\d+.\\d+`` socket id, as server SDKs expect."""
    high, low = divmod(secrets.randbelow(10**18), 10**9)  # one draw from the OS, not two
    return f"{high + 1}.{low + 1}"


def error_message(code: int, message: str) -> bytes:
    """``pusher:error``; ``data`` is an object, as the Pusher protocol docs show it."""
    return dumpb({"event": "pusher:error", "data": {"code": code, "message": message}})


def established_message(socket_id: str, activity_timeout: int) -> bytes:
    return encode_message(
        "pusher:connection_established",
        {"socket_id": socket_id, "activity_timeout": activity_timeout},
    )


def reason_of(answer: Answer) -> str:
    """What an answer that is not the one asked for says went wrong."""
    return answer.reason if isinstance(answer, Unavailable) else f"unexpected answer {answer!r}"
