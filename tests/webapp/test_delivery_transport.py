"""How the webapp reaches the broadcaster: ``REVERB_SCHEME=https`` speaks TLS and checks the
certificate, and ``OUTBOX_HTTP_TIMEOUT`` bounds the wait for an answer.

The far end here is not one of our components but a stand-in made in the test: a plain socket
that records the first bytes it receives, or a small HTTP(S) server that records each request
and answers 200 only when the test lets it. The certificate is self-signed, made by the test.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers import APP_ID, HOST
from tests.webapp.test_outbox import deliver, rows, transition

# A held answer goes out after this many seconds even if the test never allows it: less than
# the default OUTBOX_HTTP_TIMEOUT (5 s), so a client that ignored the setting would get it.
HOLD_SECONDS = 3.0
TLS_HANDSHAKE, CLIENT_HELLO = 0x16, 0x01  # TLS record type and handshake message type


class _RecordingHandler(BaseHTTPRequestHandler):
    server: StandIn

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((self.path, json.loads(body)))
        self.server.answering.wait(HOLD_SECONDS)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        """Quiet: the test asserts on ``requests``."""


class StandIn(ThreadingHTTPServer):
    """A broadcaster stand-in: records each POST ``(path, JSON body)`` in ``requests`` and
    answers 200 once ``answering`` is set (at once unless ``held``); HTTPS with ``tls``."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None, held: bool = False) -> None:
        super().__init__((HOST, 0), _RecordingHandler)
        self.requests: list[tuple[str, dict]] = []
        self.answering = threading.Event()
        if not held:
            self.answering.set()
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def stop(self) -> None:
        self.answering.set()
        self.shutdown()
        self.server_close()


@pytest.fixture
def stand_in() -> Iterator[Callable[..., StandIn]]:
    started: list[StandIn] = []

    def start(**options: object) -> StandIn:
        started.append(StandIn(**options))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key: (cert.pem, key.pem)."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broadcaster stand-in")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_stand_in(stand_in, certificate) -> StandIn:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return stand_in(tls=context)


def assert_pending(app, error: str) -> None:
    """The one outbox row was tried once, is neither delivered nor refused, and says ``error``."""
    [row] = rows(app)
    assert (row.attempts, row.delivered_at, row.failed_at) == (1, None, None)
    assert error in row.last_error, row.last_error


def test_a_broadcaster_that_never_answers_times_out_and_the_event_stays_pending(
    make_app, stand_in
):
    silent = stand_in(held=True)
    app = make_app(REVERB_PORT=silent.port, OUTBOX_HTTP_TIMEOUT=0.3)
    transition(app, 6, "paid")

    result = deliver(app)  # returns only because the client gave up: no answer was allowed yet
    silent.answering.set()

    assert [path.split("?")[0] for path, _ in silent.requests] == [f"/apps/{APP_ID}/events"]
    assert result.delivered == 0 and result.skipped == 0
    assert "timed out" in result.error, result.error
    assert_pending(app, "timed out")
    # A timeout is transient: the same row goes out once the broadcaster answers.
    assert deliver(app).delivered == 1
    [row] = rows(app)
    assert row.delivered_at is not None and len(silent.requests) == 2


def first_bytes_received(listener: socket.socket, into: list[bytes]) -> None:
    """Accept one connection, keep its first TLS record or first line, then hang up."""
    connection, _ = listener.accept()
    with connection:
        connection.settimeout(10)
        head = connection.recv(5, socket.MSG_WAITALL)
        rest = (connection.recv(int.from_bytes(head[3:5]), socket.MSG_WAITALL)
                if head[:1] == bytes([TLS_HANDSHAKE]) else connection.recv(100))
        into.append(head + rest)
        connection.shutdown(socket.SHUT_WR)
        while connection.recv(65536):
            pass  # until the client hangs up too, so no reset replaces its TLS or HTTP error


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_reverb_scheme_chooses_tls_or_plain_http(make_app, scheme):
    with socket.create_server((HOST, 0)) as listener:
        received: list[bytes] = []
        reader = threading.Thread(target=first_bytes_received, args=(listener, received))
        reader.start()
        app = make_app(REVERB_PORT=listener.getsockname()[1], REVERB_SCHEME=scheme)
        transition(app, 6, "paid")
        result = deliver(app)
        reader.join(timeout=15)

    [data] = received
    if scheme == "https":
        assert (data[0], data[5]) == (TLS_HANDSHAKE, CLIENT_HELLO), data[:16]
        assert "SSL" in result.error, result.error  # a TLS failure: no HTTP answer came back
        assert_pending(app, "SSL")
    else:
        assert data.startswith(f"POST /apps/{APP_ID}/events?".encode()), data[:40]
        assert_pending(app, "unreachable")


def test_https_delivers_to_a_broadcaster_whose_certificate_is_trusted(
    make_app, tls_stand_in, certificate, monkeypatch
):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # OpenSSL's trust store
    app = make_app(REVERB_PORT=tls_stand_in.port, REVERB_SCHEME="https")
    transition(app, 6, "paid")

    result = deliver(app)

    assert (result.delivered, result.error) == (1, None)
    [(path, body)] = tls_stand_in.requests
    assert path.startswith(f"/apps/{APP_ID}/events?")
    assert (body["name"], json.loads(body["data"])["order_id"]) == ("order.status.updated", 6)
    [row] = rows(app)
    assert row.delivered_at is not None


def test_https_refuses_a_certificate_it_does_not_trust(make_app, tls_stand_in, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    app = make_app(REVERB_PORT=tls_stand_in.port, REVERB_SCHEME="https")
    transition(app, 6, "paid")

    result = deliver(app)

    assert result.delivered == 0 and tls_stand_in.requests == []
    assert "CERTIFICATE_VERIFY_FAILED" in result.error, result.error
    assert_pending(app, "CERTIFICATE_VERIFY_FAILED")
