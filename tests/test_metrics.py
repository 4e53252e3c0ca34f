"""Prometheus metrics scraped from a real broadcaster (one process, and ``--workers 2`` on a
real redis-server) with prometheus_client's own text parser: the numbers are what the test did.

Each test reads the counters before and after what it does and checks the difference, so the
health checks the fixtures make, and other tests on the same server, do not matter.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from socket import socket as tcp_socket

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from broadcaster.config import ConfigError, load_config
from broadcaster.metrics.collector import METRICS, QUEUE_METRIC
from tests.api.redis_server import redis_server
from tests.pusher_socket import PusherSocket, error
from tests.sdk import sdk_for
from tests.servers import APP_ID, HOST, Broadcaster, free_port, start_broadcaster
from tests.waiting import eventually
from tests.webhooks.receiver import Receiver, webhooks_env

MAX_CONNECTIONS = 6
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample of ``http://127.0.0.1:port/metrics``, as the Prometheus parser reads it."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; a series not exposed yet (no refusal with that code so far) is 0."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def app(samples: Samples, name: str, **labels: str) -> float:
    return value(samples, name, app_id=APP_ID, **labels)


@dataclass
class Metered:
    """A broadcaster started with metrics on, and its metrics port."""

    server: Broadcaster
    port: int

    def metrics(self) -> Samples:
        return scrape(self.port)

    def stop(self) -> None:
        self.server.stop()


def start_metered(env: dict[str, str], args: list[str] | None = None) -> Metered:
    port = free_port()
    return Metered(start_broadcaster({"RESOUND_METRICS_PORT": str(port), **env}, args), port)


@pytest.fixture(scope="module")
def metered() -> Iterator[Metered]:
    server = start_metered({"REVERB_APP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
                            "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "members"})
    yield server
    server.stop()


@pytest.fixture
def opened() -> Iterator[list[PusherSocket | Counted]]:
    """The sockets a test opens: closed after it, passed or failed, so the next test starts
    from none."""
    sockets: list[PusherSocket | Counted] = []
    yield sockets
    for socket in sockets:
        socket.ws.close()


def no_sockets_left(server: Metered) -> None:
    eventually(lambda: app(server.metrics(), "soketi_connected") == 0,
               what="every socket of earlier tests closed")


class Counted:
    """A raw socket that remembers how many messages and bytes it sent and received."""

    def __init__(self, server: Broadcaster) -> None:
        self.ws = connect(server.ws_url, open_timeout=5, ping_interval=None, legacy=True)
        self.sent = self.sent_bytes = self.received = self.received_bytes = 0
        self.socket_id = json.loads(self.recv()["data"])["socket_id"]

    def recv(self) -> dict:
        text = self.ws.recv(timeout=5)
        self.received += 1
        self.received_bytes += len(text.encode())
        return json.loads(text)

    def send(self, message: dict) -> None:
        text = json.dumps(message)
        self.sent += 1
        self.sent_bytes += len(text.encode())
        self.ws.send(text)


def test_connections_messages_and_api_calls_are_counted(metered, opened):
    no_sockets_left(metered)
    before = metered.metrics()
    sockets = [Counted(metered.server) for _ in range(3)]
    opened.extend(sockets)
    for socket in sockets:
        socket.send({"event": "pusher:subscribe", "data": {"channel": "metered-news"}})
        assert socket.recv()["event"] == "pusher_internal:subscription_succeeded"
    during = metered.metrics()
    assert app(during, "soketi_connected") == 3
    assert app(during, "resound_channels") == 1 + app(before, "resound_channels")
    sdk = sdk_for(metered.server)
    sdk.trigger("metered-news", "first", {"n": 1})
    sdk.trigger("metered-news", "second", {"n": 2}, socket_id=sockets[0].socket_id)
    assert [socket.recv()["event"] for socket in sockets] == ["first"] * 3
    assert [socket.recv()["event"] for socket in sockets[1:]] == ["second"] * 2
    unsigned = urllib.request.Request(f"{metered.server.http_url}/apps/{APP_ID}/channels")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(unsigned, timeout=5)
    assert refused.value.code == 401
    after = metered.metrics()

    def grew(name: str, **labels: str) -> float:
        return app(after, name, **labels) - app(before, name, **labels)

    assert grew("soketi_new_connections_total") == 3
    assert grew("soketi_ws_messages_received_total") == sum(s.sent for s in sockets) == 3
    assert grew("soketi_socket_received_bytes") == sum(s.sent_bytes for s in sockets)
    # greeting, subscription_succeeded, "first" to 3 sockets; "second" to 2 of them
    assert grew("soketi_ws_messages_sent_total") == sum(s.received for s in sockets) == 11
    assert grew("soketi_socket_transmitted_bytes") == sum(s.received_bytes for s in sockets)
    assert grew("soketi_http_calls_received_total") == 3
    answers = "resound_http_answers_total"
    assert value(after, answers, status="200") - value(before, answers, status="200") == 2
    assert value(after, answers, status="401") - value(before, answers, status="401") == 1
    for socket in sockets:
        socket.ws.close()
    eventually(lambda: app(metered.metrics(), "soketi_new_disconnections_total")
               == app(before, "soketi_new_disconnections_total") + 3,
               what="3 disconnections counted")
    assert app(metered.metrics(), "soketi_connected") == 0


def test_refusals_are_counted_by_code(metered, opened):
    no_sockets_left(metered)
    before = metered.metrics()
    unknown = PusherSocket(metered.server.ws_url.replace(metered.server.key, "no-such-key"))
    assert error(unknown.greeting)[0] == 4001
    assert unknown.closed_code() == 4001
    sockets = [PusherSocket.to(metered.server) for _ in range(MAX_CONNECTIONS)]
    opened.extend(sockets)
    over = PusherSocket(metered.server.ws_url)
    assert error(over.greeting)[0] == 4004
    assert over.closed_code() == 4004
    sender, receiver = sockets[:2]
    sender.subscribe("private-metered", auth=f"{metered.server.key}:{'0' * 64}")
    assert error(sender.next_message())[0] == 4009
    for socket in (sender, receiver):
        socket.joined("private-metered")
    for n in range(25):  # a burst: past the 10 per second the bucket holds, 4301
        sender.send({"event": "client-n", "channel": "private-metered", "data": {"n": n}})
    sender.send({"event": "pusher:ping", "data": {}})  # answered after the 25 are handled
    limited = 0
    while (message := sender.recv())["event"] != "pusher:pong":
        assert error(message)[0] == 4301
        limited += 1
    assert 0 < limited < 25
    for _ in range(25 - limited):
        assert receiver.next_event()["event"] == "client-n"
    after = metered.metrics()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("resound_server_closes_total", code="4001") == 1
    assert grew("resound_server_closes_total", code="4004") == 1
    assert grew("resound_refusals_total", app_id=APP_ID, code="4009") == 1
    assert grew("resound_refusals_total", app_id=APP_ID, code="4301") == limited
    assert grew("resound_client_events_total", app_id=APP_ID) == 25 - limited
    # refused handshakes are not connections of the app
    assert grew("soketi_new_connections_total", app_id=APP_ID) == MAX_CONNECTIONS


def test_a_pong_timeout_is_counted_as_a_close_with_4201():
    metered = start_metered({"REVERB_APP_PING_INTERVAL": "0.2"})
    try:
        silent = PusherSocket.to(metered.server)  # reads, but never answers pusher:ping
        assert silent.recv()["event"] == "pusher:ping"
        assert silent.closed_code() == 4201
        samples = metered.metrics()
        assert value(samples, "resound_server_closes_total", code="4201") == 1
        eventually(lambda: app(metered.metrics(), "soketi_new_disconnections_total") == 1,
                   what="the silent socket counted as closed")
    finally:
        metered.stop()


def test_the_outbound_queue_histogram_counts_every_websocket(metered, opened):
    no_sockets_left(metered)
    opened.extend(PusherSocket.to(metered.server) for _ in range(2))
    # sockets of earlier tests may take a moment to be gone from the listener too
    eventually(lambda: value(metered.metrics(), f"{QUEUE_METRIC}_count") == 2,
               what="2 WebSockets in the outbound queue histogram")
    assert value(metered.metrics(), f"{QUEUE_METRIC}_bucket", le="+Inf") == 2


def test_workers_are_served_together_by_the_supervisor():
    with redis_server() as redis_url:
        metered = start_metered({"REVERB_SCALING_ENABLED": "true", "REDIS_URL": redis_url},
                                ["--workers", "2"])
        sockets: list[PusherSocket] = []
        try:
            before = metered.metrics()
            # 20 sockets: the kernel spreads them over both workers (all on one: 1 in 2**19)
            sockets = [PusherSocket.to(metered.server) for _ in range(20)]
            for socket in sockets:
                socket.joined("worker-news")
            sdk_for(metered.server).trigger("worker-news", "hello", {})
            assert all(socket.next_event()["event"] == "hello" for socket in sockets)

            def summed() -> bool:
                samples = metered.metrics()
                return (app(samples, "soketi_connected") == 20
                        and app(samples, "soketi_new_connections_total") == 20
                        and app(samples, "soketi_ws_messages_sent_total") == 60
                        and app(samples, "soketi_http_calls_received_total") == 1
                        and value(samples, "resound_bus_published_total")
                        - value(before, "resound_bus_published_total") == 1)

            eventually(summed, what="both workers' counters summed at the supervisor's /metrics")
        finally:
            for socket in sockets:
                socket.close()
            metered.stop()


def test_metrics_are_off_by_default_and_bound_to_loopback():
    config = load_config({})
    assert config.metrics_port is None
    assert load_config({"RESOUND_METRICS_PORT": "9601"}).metrics_host == "127.0.0.1"
    assert load_config({"RESOUND_METRICS_PORT": "9601"}, metrics_port=9602).metrics_port == 9602


@pytest.mark.parametrize("raw", ["0", "70000", "nine"])
def test_a_bad_metrics_port_is_refused_with_its_name(raw):
    with pytest.raises(ConfigError, match="RESOUND_METRICS_PORT"):
        load_config({"RESOUND_METRICS_PORT": raw})


def test_a_taken_metrics_port_stops_start_up_with_one_line(capfd):
    with tcp_socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="exited with 1"):
            start_broadcaster({"RESOUND_METRICS_PORT": str(port)})
    assert f"cannot serve metrics on 127.0.0.1:{port}" in capfd.readouterr().err


def test_the_grafana_dashboard_queries_only_metrics_we_expose():
    dashboard = (Path(__file__).resolve().parents[1] / "ops" / "grafana" / "resound.json")
    queries = [target["expr"] for panel in json.loads(dashboard.read_text())["panels"]
               for target in panel["targets"]]
    used = {name for query in queries for name in re.findall(r"\b(?:soketi|resound)_\w+", query)}
    exposed = {name for name, *_ in METRICS} | {
        f"{QUEUE_METRIC}_{suffix}" for suffix in ("bucket", "sum", "count")}
    assert used and used <= exposed, used - exposed


def test_a_request_refused_on_its_head_is_counted_with_its_reason(metered):
    before = metered.metrics()
    with tcp_socket() as raw:
        raw.settimeout(5)
        raw.connect((HOST, metered.server.port))
        raw.sendall(b"POST /apps/no-such-app/events?auth_key=k HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 100000\r\n\r\n")
        assert raw.recv(64).startswith(b"HTTP/1.1 404")
    after = metered.metrics()
    reason = {"reason": "refused on its head"}
    assert value(after, "resound_connection_refusals_total", **reason) - value(
        before, "resound_connection_refusals_total", **reason) == 1


def test_webhooks_are_counted_sent_retried_and_queued():
    receiver = Receiver(statuses=[500])
    server = start_metered(webhooks_env(receiver.url, "channel_occupied"))
    try:
        PusherSocket.to(server.server).joined("news")
        eventually(lambda: value(server.metrics(), "resound_webhook_requests_total") == 1,
                   what="the webhook, sent on its second try")
        samples = server.metrics()
        assert value(samples, "resound_webhook_retries_total") == 1
        assert value(samples, "resound_webhook_events_total") == 1
        assert value(samples, "resound_webhook_failures_total") == 0
        assert value(samples, "resound_webhook_dropped_total") == 0
        assert value(samples, "resound_webhook_queue") == 0
        assert receiver.names("news") == ["channel_occupied"]
    finally:
        server.stop()
        receiver.close()
