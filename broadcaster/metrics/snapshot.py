"""A server's counters and gauges as plain values: what a scrape reads, what a worker sends.

The hot path counts in plain integers on objects it already holds (``AppState``, the listener,
the bus); :func:`take` reads them, in the event loop's thread, into a :data:`Snapshot`: a flat
mapping from (metric name, labels) to a number. Snapshots of several workers add up with
:func:`total`. Nothing here imports prometheus_client.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from shared.channels import SERVER_TO_USER_PREFIX

if TYPE_CHECKING:
    from ..server.listener import Server

Labels = tuple[tuple[str, str], ...]
Snapshot = dict[tuple[str, Labels], float]

# Upper bounds (bytes) of the buckets of the outbound queue histogram; the default write
# buffer limit (4,000,000 bytes) closes a socket with 4100 just past the last finite one.
SCRAPE_TIMEOUT = 5.0  # seconds a scrape waits for the event loop to take the snapshot
QUEUE_BUCKETS = (0, 1_024, 16_384, 65_536, 262_144, 1_048_576, 4_194_304)

# Per app: snapshot name -> what it reads from an AppState.
_APP_COUNTERS = {
    "new_connections": "connections_opened",
    "closed_connections": "connections_closed",
    "messages_in": "messages_in",
    "bytes_in": "bytes_in",
    "messages_out": "messages_out",
    "bytes_out": "bytes_out",
    "client_events": "client_events",
    "api_calls": "api_calls",
    "api_bytes_in": "api_bytes_in",
}


def take(server: Server) -> Snapshot:
    """Every metric of ``server``'s process now; call in its event loop's thread."""
    values: Snapshot = {}
    for app in server.apps.values():
        labels: Labels = (("app_id", app.id),)
        for name, attribute in _APP_COUNTERS.items():
            values[name, labels] = getattr(app, attribute)
        values["connected", labels] = len(app.connections)
        values["channels", labels] = sum(
            1 for name in app.channels if not name.startswith(SERVER_TO_USER_PREFIX))
        values["presence_members", labels] = sum(
            len(set(channel.socket_users.values()))
            for channel in app.channels.values() if channel.type.is_presence)
        for code, count in app.refusals.items():
            values["refusals", (*labels, ("code", str(code)))] = count
    for code, count in server.closes.items():
        values["closes", (("code", str(code)),)] = count
    for status, count in server.http_answers.items():
        values["http_answers", (("status", str(status)),)] = count
    for reason, count in server.refused.items():
        values["connection_refusals", (("reason", reason),)] = count
    values["held_bytes", ()] = server.held_bytes
    values["http_bytes_in", ()] = server.http_bytes_in
    values["http_bytes_out", ()] = server.http_bytes_out
    _queues(server, values)
    for service in server.services:  # the webhooks
        for name, value in service.metrics().items():
            values[name, ()] = value
    # The Redis bus counts these; the local bus has nothing to publish, drop or reconnect.
    bus = server.bus
    for name in ("published", "dropped", "reconnects"):
        if hasattr(bus, name):
            values[f"bus_{name}", ()] = getattr(bus, name)
    return values


def _queues(server: Server, values: Snapshot) -> None:
    """The outbound queue of every WebSocket (bytes its transport has not written yet)."""
    sizes = [connection.transport.get_write_buffer_size()
             for connection in server.connections
             if connection.ws is not None and connection.transport is not None]
    for bound in QUEUE_BUCKETS:
        values["queue_bucket", (("le", str(bound)),)] = sum(1 for size in sizes if size <= bound)
    values["queue_bucket", (("le", "+Inf"),)] = len(sizes)
    values["queue_sum", ()] = sum(sizes)


def total(snapshots: Iterable[Snapshot]) -> Snapshot:
    """The sum of several processes' snapshots, metric by metric."""
    summed: Counter[tuple[str, Labels]] = Counter()
    for snapshot in snapshots:
        summed.update(snapshot)
    return dict(summed)


def reader(server: Server) -> Callable[[], Snapshot]:
    """``read()`` for another thread (the metrics endpoint's): :func:`take` in the loop's."""

    async def snapshot() -> Snapshot:
        return take(server)

    def read() -> Snapshot:
        return asyncio.run_coroutine_threadsafe(snapshot(), server.loop).result(SCRAPE_TIMEOUT)

    return read
