"""Issue 12: TLS on the one port. pusher-js (``forceTLS: true``) and the official ``pusher`` SDK
(``ssl=True``) reach a broadcaster serving wss and https from RESOUND_TLS_CERT/RESOUND_TLS_KEY,
trusting a certificate authority the test makes (NODE_EXTRA_CA_CERTS; the SDK's ``verify``)."""

from __future__ import annotations

import json
import os
import resource
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pusher
import pytest
from websockets.exceptions import InvalidStatus

from tests.api.redis_server import redis_server
from tests.certificates import Certificates, make_certificates
from tests.clients.driver import Client, NodeDriver
from tests.cluster.test_workers import open_spread, worker_processes
from tests.pusher_socket import PusherSocket
from tests.servers import APP_ID, APP_KEY, APP_SECRET, HOST, Broadcaster, free_port


@dataclass
class TlsBroadcaster(Broadcaster):
    """A broadcaster serving TLS; start-up waits on https://.../up (urllib trusts the CA
    through SSL_CERT_FILE)."""

    @property
    def http_url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return super().ws_url.replace("ws://", "wss://", 1)


@pytest.fixture
def certificates(tmp_path, monkeypatch) -> Certificates:
    made = make_certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(made.ca))  # this process's urllib: the start-up wait
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(made.ca))  # Node processes started from here
    return made


def start_tls(certificates: Certificates, env: dict[str, str] | None = None,
              args: list[str] | None = None) -> TlsBroadcaster:
    return TlsBroadcaster(port=free_port(), args=args or [], env={
        **os.environ, "REVERB_APP_ID": APP_ID, "REVERB_APP_KEY": APP_KEY,
        "REVERB_APP_SECRET": APP_SECRET, "RESOUND_TLS_CERT": str(certificates.cert),
        "RESOUND_TLS_KEY": str(certificates.key), **(env or {}),
    }).start()


@pytest.fixture
def tls_broadcaster(certificates: Certificates) -> Iterator[TlsBroadcaster]:
    server = start_tls(certificates)
    yield server
    server.stop()


def tls_sdk(server: Broadcaster, certificates: Certificates) -> pusher.Pusher:
    """The SDK with ``ssl=True``; it pins its own CA bundle, so point it at the test's CA."""
    sdk = pusher.Pusher(app_id=server.app_id, key=server.key, secret=server.secret, host=HOST,
                        port=server.port, ssl=True)
    sdk._pusher_client.http.options["verify"] = str(certificates.ca)
    return sdk


def test_pusher_js_with_force_tls_receives_an_event_over_wss(node, certificates,
                                                            tls_broadcaster):
    driver = NodeDriver(node)  # started after NODE_EXTRA_CA_CERTS is set
    try:
        client = Client.pusher(driver, "alice", tls_broadcaster.key, {
            "cluster": "", "wsHost": HOST, "wssPort": tls_broadcaster.port, "forceTLS": True,
            "enabledTransports": ["ws", "wss"],
        })
        client.subscribe("orders")
        client.wait_for(channel="orders", name="pusher:subscription_succeeded")
        tls_sdk(tls_broadcaster, certificates).trigger("orders", "shipped", {"id": 7})
        assert client.wait_for(channel="orders", name="shipped")["data"] == {"id": 7}
    finally:
        driver.close()


def test_the_pusher_sdk_with_ssl_true_uses_https(certificates, tls_broadcaster):
    sdk = tls_sdk(tls_broadcaster, certificates)
    assert sdk.trigger("orders", "shipped", {"id": 7}) == {}
    assert sdk.channels_info() == {"channels": {}}


def answer_to(port: int, request: bytes) -> bytes:
    """Everything the server sends back to ``request`` on a plain TCP connection."""
    answer = b""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_plain_http_on_the_tls_port_is_told_to_use_https_and_wss(certificates, tls_broadcaster):
    answer = answer_to(tls_broadcaster.port, b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request"), answer
    assert json.loads(body) == {"error": "this port speaks TLS only: use https:// for the HTTP "
                                         "API and wss:// for WebSockets"}
    with pytest.raises(InvalidStatus) as refused:  # a ws:// client hears the same
        PusherSocket(tls_broadcaster.ws_url.replace("wss://", "ws://", 1))
    assert refused.value.response.status_code == 400
    assert b"wss://" in refused.value.response.body
    # and TLS clients are served as before
    assert tls_sdk(tls_broadcaster, certificates).channels_info() == {"channels": {}}


def test_the_sdk_refuses_the_server_without_the_ca(tls_broadcaster):
    sdk = pusher.Pusher(app_id=tls_broadcaster.app_id, key=tls_broadcaster.key,
                        secret=tls_broadcaster.secret, host=HOST, port=tls_broadcaster.port,
                        ssl=True)
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        sdk.trigger("orders", "shipped", {"id": 7})


def test_every_worker_serves_tls(certificates):
    trusting = ssl.create_default_context(cafile=str(certificates.ca))
    with redis_server() as url:
        server = start_tls(certificates, {"REVERB_SCALING_ENABLED": "true", "REDIS_URL": url},
                           ["--workers", "2"])
        sockets: list[PusherSocket] = []
        try:
            processes = worker_processes(server)
            assert len(processes) == 2
            sockets = open_spread(server, processes, ssl=trusting)
            for socket in sockets:
                socket.joined("orders")
            tls_sdk(server, certificates).trigger("orders", "shipped", {"id": 7})
            assert all(socket.next_event()["event"] == "shipped" for socket in sockets)
        finally:
            for socket in sockets:
                socket.close()
            server.stop()


def test_every_one_of_many_tls_clients_is_answered(certificates, tls_broadcaster):
    """Clients that send their request right after the handshake, 8 at a time: each one gets
    its socket. With TLS 1.3 session tickets on, about 1 in 100 got a 408 after 10 s instead
    (the request was never read), so 320 almost always caught one."""
    trusting = ssl.create_default_context(cafile=str(certificates.ca))
    refused: list[str] = []

    def connect_many() -> None:
        for _ in range(40):
            try:
                PusherSocket.to(tls_broadcaster, ssl=trusting).close()
            except Exception as error:  # noqa: BLE001 (each one is reported)
                refused.append(repr(error)[:120])

    threads = [threading.Thread(target=connect_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert refused == []


# --- issue 24, item 2: TLS handshakes have a deadline and count against the HTTP cap ---------

FLOOD = 300  # silent connections: more than the server's descriptors below
DESCRIPTORS = 200  # the server's RLIMIT_NOFILE during the flood
HTTP_CAP = 100  # RESOUND_MAX_HTTP_CONNECTIONS: well under DESCRIPTORS


def silent_flood(port: int, count: int) -> list[socket.socket]:
    """``count`` TCP connections that never send a byte (no ClientHello), opened in order; a
    connect the server's backlog does not take in 5 s is left out."""
    opened = []
    for _ in range(count):
        sock = socket.socket()
        sock.settimeout(5)
        try:
            sock.connect((HOST, port))
        except OSError:
            sock.close()
            continue
        opened.append(sock)
    return opened


@pytest.mark.parametrize("tls", [True, False], ids=["wss", "ws"])
def test_a_wss_client_connects_during_a_flood_of_silent_connections(certificates, tls):
    """The flood outnumbers the server's descriptors: connections still in their TLS handshake
    must count against the HTTP cap from accept (the oldest is closed), as plain ones do, or
    the descriptors run out and every real client fails until the handshakes time out."""
    env = {"RESOUND_MAX_HTTP_CONNECTIONS": str(HTTP_CAP)}
    server = start_tls(certificates, env) if tls else Broadcaster(
        port=free_port(), env={**os.environ, "REVERB_APP_ID": APP_ID, "REVERB_APP_KEY": APP_KEY,
                               "REVERB_APP_SECRET": APP_SECRET, **env}).start()
    flood: list[socket.socket] = []
    try:
        resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))
        flood = silent_flood(server.port, FLOOD)
        assert len(flood) > DESCRIPTORS
        options = {"ssl": ssl.create_default_context(cafile=str(certificates.ca))} if tls else {}
        client = PusherSocket.to(server, open_timeout=20, **options)
        client.joined("orders")
        client.close()
    finally:
        for sock in flood:
            sock.close()
        server.stop()


def test_a_silent_connection_is_closed_at_the_tls_handshake_deadline(certificates):
    server = start_tls(certificates, {"RESOUND_TLS_HANDSHAKE_TIMEOUT": "0.5"})
    try:
        with socket.create_connection((HOST, server.port)) as silent:
            silent.settimeout(20)  # the default deadline would be 60 s or more
            try:
                assert silent.recv(1) == b""
            except ConnectionResetError:
                pass  # closed all the same
    finally:
        server.stop()
