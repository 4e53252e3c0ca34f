"""A real broadcaster listener run in this process, on its own event-loop thread.

For tests that need to reach inside (publish straight through the server, read app state)
while real clients talk to it over loopback sockets.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from broadcaster.config import AppConfig, ServerConfig
from broadcaster.protocol.publication import TERMINATE_USER, Publication
from broadcaster.server.listener import Server
from tests.servers import APP_ID, APP_KEY, APP_SECRET, HOST

T = TypeVar("T")


class InProcessServer:
    def __init__(self, **settings: Any) -> None:
        app = AppConfig(id=APP_ID, key=APP_KEY, secret=APP_SECRET)
        self.config = ServerConfig(host=HOST, port=0, apps=(app,), **settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Server = self.run(self._start)

    async def _start(self) -> Server:
        server = Server(self.config)
        await server.start()
        return server

    def run(self, coroutine_function: Callable[[], Any]) -> Any:
        """Await ``coroutine_function()`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine_function(), self.loop).result(10)

    def call(self, function: Callable[[], T]) -> T:
        """Run ``function()`` on the server's loop thread and return its result."""
        done: Future[T] = Future()

        def run() -> None:
            try:
                done.set_result(function())
            except Exception as exc:  # handed to the test thread
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return done.result(10)

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.server.port}/app/{APP_KEY}"

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def app(self):
        return self.server.app_by_id(APP_ID)

    def publish(self, channels: list[str], event: str, data: str,
                except_socket_id: str | None = None, times: int = 1) -> None:
        """Publish an event ``times`` times through the server's bus, in one loop pass."""
        publication = Publication(APP_ID, tuple(channels), event, data, except_socket_id)
        self.call(lambda: [self.server.publish(publication) for _ in range(times)])

    def terminate_user(self, user_id: str) -> None:
        """Close every socket of ``user_id``, as the API's terminate_connections does."""
        publication = Publication(APP_ID, (), "", None, user_id=user_id, kind=TERMINATE_USER)
        self.call(lambda: self.server.publish(publication))

    def stop(self) -> None:
        self.run(self.server.shutdown)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
