"""Sign-out ends live access: the webapp asks the real broadcaster to close every socket signed
in as that user (``POST users/{id}/terminate_connections``), through the outbox, in order with
the user's events, and later if the broadcaster is down when the user signs out."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.clients.webapp_api import WebappApi
from tests.pusher_socket import PusherSocket
from tests.servers import (
    Broadcaster,
    Webapp,
    free_port,
    start_broadcaster,
    start_webapp,
    start_worker,
)
from tests.waiting import eventually
from tests.webapp.conftest import ADMIN
from tests.webapp.test_integration import (
    ALICE,
    ALICE_CHANNEL,
    BOB,
    broadcasting_post,
    http_authorizer,
    outbox_state,
    subscribed,
    token_of,
    transition,
)

UNAUTHORIZED = 4009  # the close code of a terminated connection


@pytest.fixture
def server(broadcaster: Broadcaster) -> Broadcaster:
    """``sockets`` open on the test's own broadcaster."""
    return broadcaster


def user_auth(webapp: Webapp, token: str, socket_id: str) -> dict:
    """The webapp's ``/broadcasting/user-auth`` answer for ``socket_id``: ``{auth, user_data}``."""
    return broadcasting_post(webapp, token, "user-auth", f"socket_id={socket_id}")[1]


def signed_in(sock: PusherSocket, webapp: Webapp, token: str) -> PusherSocket:
    """``pusher:signin`` with the webapp's answer, as pusher-js sends it."""
    sock.send({"event": "pusher:signin", "data": user_auth(webapp, token, sock.socket_id)})
    answer = sock.next_message()
    assert answer is not None and answer["event"] == "pusher:signin_success", answer
    return sock


def logout(webapp: Webapp, token: str) -> None:
    request = urllib.request.Request(f"{webapp.url}/api/logout", method="POST",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


@pytest.mark.parametrize("deliverer", ["worker", "web process"])
def test_logout_closes_that_users_sockets_after_their_events_and_no_one_elses(
        broadcaster: Broadcaster, tmp_path: Path, sockets, deliverer):
    database = tmp_path / "web.sqlite3"
    on_commit = "1" if deliverer == "web process" else "0"
    webapp = start_webapp(broadcaster.port, database, {"OUTBOX_DELIVER_ON_COMMIT": on_commit})
    try:
        alice, bob, admin = (token_of(webapp, email) for email in (ALICE, BOB, ADMIN))
        alice_ws = subscribed(signed_in(sockets(), webapp, alice), ALICE_CHANNEL,
                              http_authorizer(webapp, alice))
        alice_tab = signed_in(sockets(), webapp, alice)
        bob_ws = signed_in(sockets(), webapp, bob)
        transition(webapp, admin, 6, "paid")  # alice's order, queued before her sign-out
        logout(webapp, alice)
        if deliverer == "worker":
            assert start_worker(webapp, ["--once"]).wait() == 0
        event = alice_ws.next_event()
        assert event is not None and json.loads(event["data"])["current_status"] == "paid"
        assert alice_ws.closed_code() == UNAUTHORIZED
        assert alice_tab.closed_code() == UNAUTHORIZED
        eventually(lambda: outbox_state(database) == [(1, True), (1, True)], 10.0,
                   "both rows recorded as delivered")
    finally:
        webapp.stop()
    bob_ws.send({"event": "pusher:ping", "data": {}})
    assert bob_ws.next_message(wanted=lambda m: m["event"] == "pusher:pong") is not None


def test_a_sign_out_while_the_broadcaster_is_down_is_sent_when_it_is_back(tmp_path: Path):
    port = free_port()  # the broadcaster is down: nothing listens here yet
    database = tmp_path / "web.sqlite3"
    webapp = start_webapp(port, database, {"OUTBOX_DELIVER_ON_COMMIT": "0"})
    broadcaster = None
    try:
        alice, alice_user = WebappApi(webapp.url).login(ALICE)
        bob = token_of(webapp, BOB)
        logout(webapp, alice)
        assert start_worker(webapp, ["--once"]).wait() == 1  # refused: the row waits
        assert outbox_state(database) == [(1, False)]

        broadcaster = start_broadcaster(port=port)
        # A tab of alice's that signed in before she signed out (signed as the webapp would).
        alice_tab = PusherSocket.to(broadcaster)
        alice_tab.sign_in(str(alice_user["id"]))
        bob_ws = signed_in(PusherSocket.to(broadcaster), webapp, bob)
        assert start_worker(webapp, ["--once"]).wait() == 0
        assert alice_tab.closed_code() == UNAUTHORIZED
        bob_ws.send({"event": "pusher:ping", "data": {}})
        assert bob_ws.next_message(wanted=lambda m: m["event"] == "pusher:pong") is not None
        assert outbox_state(database) == [(2, True)]
    finally:
        webapp.stop()
        if broadcaster is not None:
            broadcaster.stop()
