"""Issue 11's user features with pusher-js 8 in Node against a real broadcaster: watchlist
events through ``pusher.user.watchlist.bind``, ``channel.subscriptionCount`` from
``pusher_internal:subscription_count``, and an unauthorized connection closed with 4009.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clients.auth_endpoint import AuthEndpoint
from tests.clients.driver import Client, NodeDriver
from tests.clients.options import pusher_options
from tests.sdk import sdk_for
from tests.servers import Broadcaster, start_broadcaster

AUTHORIZED_TIMEOUT = 1.5  # seconds; short, so the test does not wait long for the 4009


@pytest.fixture(scope="module")
def featured() -> Iterator[Broadcaster]:
    """A broadcaster whose app has every user feature on."""
    running = start_broadcaster({
        "RESOUND_APP_WATCHLIST_EVENTS": "true",
        "RESOUND_APP_SUBSCRIPTION_COUNT": "true",
        "RESOUND_APP_AUTHORIZED_CONNECTIONS": "true",
        "RESOUND_APP_AUTHORIZED_CONNECTIONS_TIMEOUT": str(AUTHORIZED_TIMEOUT),
    })
    yield running
    running.stop()


@pytest.fixture
def endpoint(featured: Broadcaster) -> Iterator[AuthEndpoint]:
    running = AuthEndpoint(featured.key, featured.secret)
    yield running
    running.stop()


def connect(driver: NodeDriver, server: Broadcaster, endpoint: AuthEndpoint, user_id: str,
            watchlist: str = "") -> Client:
    headers = {"X-User-Id": user_id, "X-User-Name": user_id, "X-Watchlist": watchlist}
    options = pusher_options(server, endpoint.url, headers)
    options["userAuthentication"] = {"endpoint": endpoint.user_url, "transport": "ajax",
                                     "headers": headers}
    return Client.pusher(driver, user_id, server.key, options)


def signed_in(driver, server, endpoint, user_id: str, watchlist: str = "") -> Client:
    client = connect(driver, server, endpoint, user_id, watchlist)
    client.watch()
    client.signin()
    return client


def test_watchlist_events_give_the_state_after_signin_then_each_change(
    driver, featured, endpoint
):
    bob = signed_in(driver, featured, endpoint, "bob")
    ann = signed_in(driver, featured, endpoint, "ann", "bob,cy,dee")
    state = [ann.wait_for(type="watchlist", name=name)["data"] for name in ("online", "offline")]
    assert state == [{"name": "online", "user_ids": ["bob"]},
                     {"name": "offline", "user_ids": ["cy", "dee"]}]
    cy = signed_in(driver, featured, endpoint, "cy")
    assert ann.wait_for(type="watchlist", name="online", count=2)["data"] == {
        "name": "online", "user_ids": ["cy"]}
    bob.disconnect()
    assert ann.wait_for(type="watchlist", name="offline", count=2)["data"] == {
        "name": "offline", "user_ids": ["bob"]}
    cy.disconnect()
    assert ann.wait_for(type="watchlist", name="offline", count=3)["data"] == {
        "name": "offline", "user_ids": ["cy"]}
    assert [e["data"]["user_ids"] for e in ann.seen(type="watchlist")] == [
        ["bob"], ["cy", "dee"], ["cy"], ["bob"], ["cy"]]


def test_subscription_count_reaches_channel_subscription_count(driver, featured, endpoint):
    # Signed in, as this app closes connections that do not authorize in time.
    first = signed_in(driver, featured, endpoint, "s1")
    first.subscribe("scores")
    assert first.wait_for(channel="scores", name="pusher:subscription_count")["data"] == {
        "subscription_count": 1}
    second = signed_in(driver, featured, endpoint, "s2")
    second.subscribe("scores")
    for client, nth in ((first, 2), (second, 1)):
        event = client.wait_for(channel="scores", name="pusher:subscription_count", count=nth)
        assert event["data"] == {"subscription_count": 2}
        assert client.subscription_count("scores") == 2
    second.disconnect()
    assert first.wait_for(channel="scores", name="pusher:subscription_count", count=3)[
        "data"] == {"subscription_count": 1}
    assert first.subscription_count("scores") == 1


def test_a_connection_that_never_authorizes_is_closed_with_4009(driver, featured, endpoint):
    private = connect(driver, featured, endpoint, "p1")
    private.subscribe("private-desk")
    private.wait_for(channel="private-desk", name="pusher:subscription_succeeded")
    idle = connect(driver, featured, endpoint, "idle")
    idle.subscribe("scores")  # a public channel does not authorize a connection
    error = idle.wait_for(type="connection_error")["data"]
    assert error["code"] == 4009 and "authorized" in error["message"]
    idle.wait_for(type="state", current="disconnected")
    # The private subscriber's deadline passed before the idle one's: it is still connected.
    sdk_for(featured).trigger("private-desk", "still-here", {"ok": True})
    assert private.wait_for(channel="private-desk", name="still-here")["data"] == {"ok": True}
