"""A socket that signs in again as another user stops being the first user, over real sockets
against a real broadcaster, with send-to-user and terminate through the official SDK."""

import json

from tests.sdk import sdk_for


def test_signing_in_as_another_user_stops_the_first_users_events(sockets, server):
    switcher, first_users_tab = sockets(), sockets()
    switcher.sign_in("u1")
    first_users_tab.sign_in("u1")
    switcher.sign_in("u2")
    sdk = sdk_for(server)
    sdk.send_to_user("u1", "for-u1", {})
    # The broadcaster has handled the trigger for u1 once u1's remaining tab has it.
    assert first_users_tab.next_event()["event"] == "for-u1"
    sdk.send_to_user("u2", "for-u2", {"n": 2})
    # So the switcher's next event must be u2's: one for u1 would come first.
    event = switcher.next_event()
    assert (event["event"], event["channel"]) == ("for-u2", "#server-to-user-u2")
    assert json.loads(event["data"]) == {"n": 2}


def test_terminating_the_first_user_spares_a_socket_that_switched_away(sockets, server):
    switcher, first_users_tab = sockets(), sockets()
    switcher.sign_in("t1")
    first_users_tab.sign_in("t1")
    switcher.sign_in("t2")
    sdk_for(server).terminate_user_connections("t1")
    assert first_users_tab.closed_code() == 4009
    switcher.send({"event": "pusher:ping", "data": {}})
    assert switcher.next_message()["event"] == "pusher:pong"
