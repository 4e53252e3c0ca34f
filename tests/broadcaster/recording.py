"""A Client that records what the protocol core sends, for tests of the pure core.

It stands in for the socket edge only: frames are decoded with websockets' own parser, so a
malformed frame from the core would fail the test.
"""

from __future__ import annotations

from typing import Any

from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from broadcaster.cluster.local import LocalState
from broadcaster.config import AppConfig
from broadcaster.protocol.fanout import deliver
from broadcaster.protocol.requests import ListMembers
from broadcaster.protocol.session import Session
from broadcaster.protocol.state import AppState
from shared.payloads import loads


def decode_frame(frame: bytes) -> bytes:
    reader = StreamReader()
    reader.feed_data(frame)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        parsed = done.value
    else:
        raise AssertionError("incomplete frame")
    assert parsed.opcode is Opcode.TEXT and parsed.fin
    return parsed.data


class RecordingClient:
    def __init__(self, socket_id: str) -> None:
        self.socket_id = socket_id
        self.messages: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    def send(self, message: bytes) -> None:
        self.messages.append(loads(message))

    def send_frame(self, frame: bytes) -> None:
        self.send(decode_frame(frame))

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def take(self) -> list[dict[str, Any]]:
        messages, self.messages = self.messages, []
        return messages


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# Each app's cluster state, as one process has it: the app is kept with it, so ids stay unique.
_STATES: dict[int, tuple[AppState, LocalState]] = {}


def app_state(**settings: Any) -> AppState:
    return AppState(AppConfig(id="1", key="key", secret="secret", **settings))


def local_state(app: AppState) -> LocalState:
    """The app's in-memory cluster state (one per app), publishing as the local bus does."""
    if id(app) not in _STATES:
        state = LocalState()
        state.attach({app.id: app}, lambda publication: deliver(app, publication))
        _STATES[id(app)] = (app, state)
    return _STATES[id(app)][1]


def members(app: AppState, channel: str) -> dict[str, Any]:
    """A presence channel's roster, as the app's cluster state holds it."""
    return local_state(app).answer(ListMembers(app.id, channel)).members


def new_session(app: AppState, client: RecordingClient, clock: Clock | None = None) -> Session:
    """A session whose publications are delivered in place, as the single-process bus does,
    and whose requests the in-memory cluster state answers at once."""
    state = local_state(app)

    def ask(request: Any) -> None:
        state.submit(request, lambda answer: session.answer(request, answer))

    session = Session(app, client, clock or Clock(),
                      lambda publication: deliver(app, publication), ask)
    return session


def open_session(app: AppState, socket_id: str, clock: Clock | None = None) -> tuple[
    Session, RecordingClient
]:
    client = RecordingClient(socket_id)
    session = new_session(app, client, clock)
    session.open()
    client.take()
    return session, client
