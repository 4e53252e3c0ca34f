"""What the webapp says when it cannot reach the broadcaster, or reaches something else: a
sentence a person can act on, with no ``[Errno 111]`` and no bytes repr."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.servers import HOST, free_port
from webapp.broadcasting.reverb_client import DeliveryError, ReverbClient


def client_on(port: int) -> ReverbClient:
    return ReverbClient("1", "key", "secret", HOST, port, timeout=5)


def test_a_refused_connection_is_said_in_words():
    port = free_port()  # nothing listens there
    with pytest.raises(DeliveryError) as failed:
        client_on(port).occupied_channels("private-")
    assert str(failed.value) == f"broadcaster at {HOST}:{port} unreachable: Connection refused"


@pytest.fixture
def another_web_server() -> Iterator[int]:
    """Some other web server where REVERB_PORT points: it answers every GET with a page."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = b"<html>an admin page</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_an_answer_that_is_not_the_broadcasters_is_shown_as_text(another_web_server):
    with pytest.raises(DeliveryError) as failed:
        client_on(another_web_server).occupied_channels("private-")
    assert str(failed.value) == (
        f"GET /apps/1/channels answered no channels (dict); is {HOST}:{another_web_server} the "
        "broadcaster? It answered: <html>an admin page</html>")
