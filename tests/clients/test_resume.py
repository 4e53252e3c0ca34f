"""Issue 19, the client side: @resound/resume (clients/js) with the real pusher-js and
laravel-echo from npm, in Node (js/driver.mjs) and in headless Chromium (js/browser_driver.mjs),
against real broadcaster processes keeping history (``RESOUND_APP_HISTORY``).

A client whose connection the server cuts gets every event published while it was away exactly
once and in order after it reconnects, and a ``resumed`` report; past the history window it gets
``failed``. Clients without the module keep working on history channels.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pusher
import pytest

from tests.api.redis_server import redis_server
from tests.clients.auth_endpoint import AuthEndpoint
from tests.clients.driver import ROOT, WAIT, Client, NodeDriver
from tests.clients.options import pusher_options, reverb_options
from tests.pusher_socket import PusherSocket
from tests.sdk import sdk_for
from tests.servers import (
    APP_KEY,
    APP_SECRET,
    Broadcaster,
    broadcaster_pair,
    start_broadcaster,
)

WINDOW = 10
HISTORY = json.dumps([{"channels": "private-orders.*", "limit": WINDOW, "ttl": 3600}])
CHANNEL = "private-orders.7"
SHIPPED = "order.shipped"
BROWSER_DRIVER = Path(__file__).with_name("js") / "browser_driver.mjs"


@pytest.fixture
def broadcaster() -> Iterator[Broadcaster]:
    """One broadcaster keeping the last WINDOW events of ``private-orders.*``."""
    running = start_broadcaster({"RESOUND_APP_HISTORY": HISTORY})
    yield running
    running.stop()


@pytest.fixture
def auth() -> Iterator[AuthEndpoint]:
    """Channel and user authorization for the test app, whichever broadcaster serves it."""
    endpoint = AuthEndpoint(APP_KEY, APP_SECRET)
    yield endpoint
    endpoint.stop()


@pytest.fixture(params=["node", "chromium"])
def clients(request: pytest.FixtureRequest, node: str) -> Iterator[NodeDriver]:
    """The clients' driver: pusher-js and Echo in Node, or each in a Chromium page."""
    if request.param == "node":
        driver = NodeDriver(node)
    else:
        env = dict(os.environ, CHROMIUM=request.getfixturevalue("chromium"))
        driver = NodeDriver(node, BROWSER_DRIVER, env)
    yield driver
    driver.close()


def options_for(server: Broadcaster, auth: AuthEndpoint, user_id: str) -> dict:
    """pusher-js options as Echo's Reverb connector passes them, signed in as ``user_id``."""
    options = pusher_options(server, auth.url, {"X-User-Id": user_id, "X-User-Name": user_id})
    options["userAuthentication"] = {"endpoint": auth.user_url, "transport": "ajax",
                                     "headers": {"X-User-Id": user_id}}
    return options


@dataclass
class Subscriber:
    """A client on CHANNEL whose app gets SHIPPED events under the name ``event``."""

    client: Client
    event: str

    @property
    def name(self) -> str:
        return self.client.name

    def wait_for_events(self, count: int, timeout: float = WAIT) -> None:
        self.client.wait_for(channel=CHANNEL, name=self.event, count=count, timeout=timeout)

    def received(self) -> list[int]:
        """The numbers of the SHIPPED events the app got, in arrival order."""
        return [event["data"]["n"] for event in self.client.seen(channel=CHANNEL, name=self.event)]

    def report(self, kind: str) -> dict:
        """The first ``resumed`` or ``failed`` report on CHANNEL (waiting for it)."""
        return self.client.wait_for(type=kind, channel=CHANNEL)["data"]


def pusher_client(clients: NodeDriver, server: Broadcaster, auth: AuthEndpoint, name: str,
                  resume: bool) -> Subscriber:
    """A bare pusher-js client signed in as ``name``, subscribed to CHANNEL."""
    client = Client.pusher(clients, name, server.key, options_for(server, auth, name), resume)
    client.signin()
    client.subscribe(CHANNEL)
    client.wait_for(channel=CHANNEL, name="pusher:subscription_succeeded")
    return Subscriber(client, SHIPPED)


def echo_client(clients: NodeDriver, server: Broadcaster, auth: AuthEndpoint, name: str,
                resume: bool) -> Subscriber:
    """An Echo client signed in as ``name``, listening to SHIPPED on CHANNEL."""
    base = options_for(server, auth, name)
    options = reverb_options(server, authEndpoint=base["authEndpoint"], auth=base["auth"],
                             userAuthentication=base["userAuthentication"])
    client = Client.echo(clients, name, options, resume)
    client.signin()
    client.listen(CHANNEL.removeprefix("private-"), f".{SHIPPED}")
    client.wait_for(type="subscribed", channel=CHANNEL)
    return Subscriber(client, f".{SHIPPED}")


def no_page_errors(clients: NodeDriver, allowed: str = "") -> None:
    """No JavaScript error in a Chromium page so far (checked before the servers stop) but
    those containing ``allowed``."""
    errors = [e["data"] for e in clients.matching(type="page_error")]
    assert [error for error in errors if not (allowed and allowed in error)] == []


def publish(api: pusher.Pusher, *numbers: int) -> None:
    for number in numbers:
        api.trigger(CHANNEL, SHIPPED, {"n": number})


def subscribers(clients: NodeDriver, server: Broadcaster, auth: AuthEndpoint, resume: bool,
                *numbers: int) -> tuple[Subscriber, Subscriber]:
    """A bare pusher-js client and an Echo client on CHANNEL, once both got the SHIPPED events
    ``numbers``, published through ``server``."""
    pair = (pusher_client(clients, server, auth, "ann", resume),
            echo_client(clients, server, auth, "ben", resume))
    publish(sdk_for(server), *numbers)
    for subscriber in pair:
        subscriber.wait_for_events(len(numbers))
        assert subscriber.received() == list(numbers), subscriber.name
    return pair


def cut_off(api: pusher.Pusher, *subscribers: Subscriber) -> None:
    """The server closes every socket of the subscribers' users; pusher-js then stays offline."""
    for subscriber in subscribers:
        api.terminate_user_connections(subscriber.name)
    for subscriber in subscribers:
        subscriber.client.wait_for(type="state", current="disconnected")


def test_the_module_unit_tests_pass(node: str) -> None:
    run = subprocess.run([node, "--test", "test/"], cwd=ROOT / "clients" / "js",
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout


def test_history_frames_carry_a_serial_that_unchanged_pusher_js_and_echo_ignore(
    clients: NodeDriver, broadcaster: Broadcaster, auth: AuthEndpoint
) -> None:
    raw = PusherSocket.to(broadcaster)
    try:
        succeeded = raw.joined(CHANNEL)
        subscribers(clients, broadcaster, auth, False, 1, 2, 3)  # asserts they got them
        frames = [raw.next_event() for _ in range(3)]
    finally:
        raw.close()

    epoch = frames[0]["epoch"]
    assert [(f["serial"], f["epoch"]) for f in frames] == [(n, epoch) for n in (1, 2, 3)]
    assert epoch and succeeded["serial"] == 0
    assert succeeded["epoch"] in ("", epoch)  # named at the first publication
    assert clients.matching(type="connection_error") == []
    no_page_errors(clients)


def test_a_client_cut_off_gets_each_missed_event_once_and_in_order(
    clients: NodeDriver, broadcaster: Broadcaster, auth: AuthEndpoint
) -> None:
    api = sdk_for(broadcaster)
    bare, echo = subscribers(clients, broadcaster, auth, True, 1, 2)

    cut_off(api, bare, echo)
    publish(api, 3, 4, 5, 6)  # with 7 to 9 below, within the window
    for subscriber in (bare, echo):
        subscriber.client.connect()
    publish(api, 7, 8, 9)  # while the resume may be under way

    for subscriber in (bare, echo):
        subscriber.wait_for_events(9)
        resumed = subscriber.report("resumed")
        assert resumed["after"] == 2 and resumed["latest"] >= 6, resumed
        assert subscriber.received() == list(range(1, 10)), subscriber.name
        assert subscriber.client.seen(type="failed") == []
    no_page_errors(clients)


def test_past_the_window_a_client_is_told_to_reload(
    clients: NodeDriver, broadcaster: Broadcaster, auth: AuthEndpoint
) -> None:
    api = sdk_for(broadcaster)
    bare, echo = subscribers(clients, broadcaster, auth, True, 1)

    cut_off(api, bare, echo)
    publish(api, *range(2, 3 + WINDOW))  # serial 2 drops out of the window
    for subscriber in (bare, echo):
        subscriber.client.connect()

    for subscriber in (bare, echo):
        failed = subscriber.report("failed")
        assert failed["latest"] == 2 + WINDOW and failed["reason"], failed
    publish(api, 3 + WINDOW)
    for subscriber in (bare, echo):
        subscriber.wait_for_events(2)
        assert subscriber.received() == [1, 3 + WINDOW]
        assert subscriber.client.seen(type="resumed") == []
    no_page_errors(clients)


@pytest.fixture
def redis_pair() -> Iterator[tuple[Broadcaster, Broadcaster]]:
    """Two broadcasters on one redis-server, both keeping history there."""
    with redis_server() as url, broadcaster_pair({
        "REVERB_SCALING_ENABLED": "true", "REDIS_URL": url, "RESOUND_APP_HISTORY": HISTORY,
    }) as pair:
        yield pair


@pytest.mark.slow
def test_a_client_whose_node_restarts_resumes_from_redis_on_its_own(
    clients: NodeDriver, redis_pair: tuple[Broadcaster, Broadcaster],
    auth: AuthEndpoint
) -> None:
    node, other = redis_pair
    bare, echo = subscribers(clients, node, auth, True, 1)

    node.stop()  # pusher-js retries on its own
    for subscriber in (bare, echo):
        subscriber.client.wait_for(type="state", current="connecting")
    publish(sdk_for(other), 2, 3, 4)
    node.start()

    for subscriber in (bare, echo):
        subscriber.wait_for_events(4, timeout=40)
        resumed = subscriber.report("resumed")
        assert (resumed["after"], resumed["latest"], resumed["replayed"]) == (1, 4, 3)
        assert subscriber.received() == [1, 2, 3, 4]
    no_page_errors(clients, allowed="ERR_CONNECTION_REFUSED")  # retries while it was down
