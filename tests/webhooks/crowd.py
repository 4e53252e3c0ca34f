"""Many sockets at once, for webhook bursts: each subscribed to one channel of its own, opened
in batches and closed together, on an event loop in a thread of its own (a sync client would
need a thread per socket)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from shared.signatures import sign_channel
from tests.pusher_socket import member
from tests.servers import APP_KEY, APP_SECRET

# Sockets opening at once: the machine has 2 cores, and each presence join holds one of the
# cluster state's Redis connections (redis-py's default pool: 100) until it is answered.
BATCH = 50
TIMEOUT = 30.0  # seconds for one batch to open and subscribe, or for all to close


async def _subscribed(url: str, channel: str) -> ClientConnection:
    """A socket subscribed to ``channel``; on a presence channel, as the user named like it."""
    ws = await connect(url, ping_interval=None, close_timeout=5)
    socket_id = json.loads(json.loads(await ws.recv())["data"])["socket_id"]
    data: dict[str, Any] = {"channel": channel}
    if channel.startswith("presence-"):
        data["channel_data"] = member(channel)
        data["auth"] = sign_channel(APP_KEY, APP_SECRET, socket_id, channel,
                                    data["channel_data"])
    await ws.send(json.dumps({"event": "pusher:subscribe", "data": data}))
    answer = json.loads(await ws.recv())
    assert answer["event"] == "pusher_internal:subscription_succeeded", answer
    return ws


class Crowd:
    """Sockets on ``url``, one per channel, kept open by a loop thread until :meth:`close`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sockets: list[ClientConnection] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="crowd", daemon=True)
        self.thread.start()

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(TIMEOUT)

    def open(self, channels: list[str]) -> None:
        """One socket subscribed to each of ``channels``, :data:`BATCH` at a time."""
        for start in range(0, len(channels), BATCH):
            batch = channels[start:start + BATCH]
            self.sockets += self._run(self._gather(*(_subscribed(self.url, channel)
                                                     for channel in batch)))

    def close(self) -> None:
        """Close every socket at once (close handshakes all started together)."""
        sockets, self.sockets = self.sockets, []
        self._run(self._gather(*(ws.close() for ws in sockets)))

    @staticmethod
    async def _gather(*coroutines: Coroutine[Any, Any, Any]) -> list[Any]:
        return await asyncio.gather(*coroutines)

    def stop(self) -> None:
        """Close what is still open and end the loop thread."""
        if self.sockets:
            self.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()
