"""``python -m bench.sink PORT FILE``: a webhook receiver in a process of its own.

It answers every POST with 200 (keep-alive, as a real receiver would) and appends each event
of the body to FILE as a JSON line ``{"at": <time.monotonic()>, "event": {...}}``; the clock is
the machine's, so the benchmark compares it with its own. Run apart from the benchmark, so that
receiving does not slow the process that measures the sockets.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO

from tests.servers import HOST


def serve(port: int, out: IO[str]) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            now = time.monotonic()
            out.write("".join(json.dumps({"at": now, "event": event}) + "\n"
                              for event in body["events"]))
            out.flush()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    with open(sys.argv[2], "a") as events_file:
        serve(int(sys.argv[1]), events_file)
