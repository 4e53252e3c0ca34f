"""Prometheus families built at scrape time from a :data:`~.snapshot.Snapshot`; the endpoint.

The only module that imports prometheus_client. Its collector reads plain numbers (one
process's, or the sum the supervisor keeps of its workers') each time ``/metrics`` is scraped,
on a registry of its own (never the library's global ``REGISTRY``).

Names: soketi's (``soketi_*``, labelled by ``app_id``) so that dashboards made for soketi work,
and ours (``resound_*``). soketi's byte counters have no ``_total`` suffix; prometheus_client
adds one to every counter, so those four are exposed untyped under their exact soketi names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector

from .snapshot import Labels, Snapshot

logger = logging.getLogger("broadcaster.metrics")

_FAMILIES: dict[str, type[Metric]] = {
    "counter": CounterMetricFamily,
    "gauge": GaugeMetricFamily,
    "untyped": UnknownMetricFamily,
}

# (exposed name, kind, label names, help, snapshot name)
METRICS: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    ("soketi_connected", "gauge", ("app_id",), "WebSockets connected to an app now",
     "connected"),
    ("soketi_new_connections_total", "counter", ("app_id",),
     "WebSockets that connected to an app", "new_connections"),
    ("soketi_new_disconnections_total", "counter", ("app_id",),
     "WebSockets of an app that closed", "closed_connections"),
    ("soketi_ws_messages_received_total", "counter", ("app_id",),
     "WebSocket messages received from clients", "messages_in"),
    ("soketi_socket_received_bytes", "untyped", ("app_id",),
     "Bytes of WebSocket messages received from clients (a counter)", "bytes_in"),
    ("soketi_ws_messages_sent_total", "counter", ("app_id",),
     "WebSocket messages sent to clients (a broadcast counts once per receiving socket)",
     "messages_out"),
    ("soketi_socket_transmitted_bytes", "untyped", ("app_id",),
     "Bytes of WebSocket messages sent to clients (a counter)", "bytes_out"),
    ("soketi_http_calls_received_total", "counter", ("app_id",),
     "HTTP API calls received for an app", "api_calls"),
    ("soketi_http_received_bytes", "untyped", ("app_id",),
     "Bytes of HTTP API request bodies received for an app (a counter)", "api_bytes_in"),
    ("soketi_http_transmitted_bytes", "untyped", (),
     "Bytes of HTTP response bodies sent, every app and path (a counter)", "http_bytes_out"),
    ("resound_channels", "gauge", ("app_id",),
     "Occupied channels (summed over workers: a channel on two workers counts twice)",
     "channels"),
    ("resound_presence_members", "gauge", ("app_id",),
     "Members of presence channels, per channel, summed over channels (and over workers)",
     "presence_members"),
    ("resound_client_events_total", "counter", ("app_id",),
     "Client events (client-*) accepted and published", "client_events"),
    ("resound_refusals_total", "counter", ("app_id", "code"),
     "Commands refused with pusher:error, by error code (e.g. 4009 bad auth, 4301 rate limit, "
     "4004 presence channel full)", "refusals"),
    ("resound_server_closes_total", "counter", ("code",),
     "WebSockets the server closed, by close code (4001 unknown app, 4004 over quota, "
     "4009 unauthorized, 4100 slow consumer, 4201 pong timeout, 4200 shutdown, ...)", "closes"),
    ("resound_http_answers_total", "counter", ("status",),
     "HTTP answers sent, by status", "http_answers"),
    ("resound_connection_refusals_total", "counter", ("reason",),
     "Connections a cap or deadline refused or cut off (slow requests, too many HTTP "
     "connections, slow sockets holding too much, refusals on the request head)",
     "connection_refusals"),
    ("resound_held_bytes", "gauge", (),
     "Bytes held for slow sockets beyond their transports' buffers, all sockets together",
     "held_bytes"),
    ("resound_http_received_bytes_total", "counter", (),
     "Bytes of HTTP request bodies received, every path", "http_bytes_in"),
    ("resound_bus_published_total", "counter", (),
     "Publications sent to Redis (scaling on)", "bus_published"),
    ("resound_bus_dropped_total", "counter", (),
     "Publications dropped: the queue for Redis was full, or the bus stopped first",
     "bus_dropped"),
    ("resound_bus_reconnects_total", "counter", (),
     "Resubscriptions to Redis after losing it", "bus_reconnects"),
    ("resound_webhook_requests_total", "counter", (),
     "Webhook requests a receiver answered with a 2xx", "webhook_requests"),
    ("resound_webhook_events_total", "counter", (),
     "Webhook events delivered (a batched request carries several)", "webhook_events"),
    ("resound_webhook_retries_total", "counter", (),
     "Webhook tries that failed (not a 2xx, a timeout, no connection) and were retried",
     "webhook_retries"),
    ("resound_webhook_failures_total", "counter", (),
     "Webhook requests given up on after 5 minutes of retries", "webhook_failures"),
    ("resound_webhook_dropped_total", "counter", (),
     "Webhook events given up on: the node's queue was full, Redis failed them for 5 minutes, "
     "or their receiver did", "webhook_drops"),
    ("resound_webhook_queued_total", "counter", (),
     "Webhook events decided and put on the delivery queue (with Redis, any node may send "
     "them)", "webhook_queued"),
    ("resound_webhook_redis_retries_total", "counter", (),
     "Redis steps of the webhook queue (decisions, pops, acknowledgements) that failed and "
     "were tried again", "webhook_store_retries"),
    ("resound_webhook_queue", "gauge", (),
     "Webhook events of this process waiting: to be decided, in their 3 s window, queued in "
     "memory or being sent (with Redis, the cluster's delivery queue is in Redis)",
     "webhook_queue"),
)
QUEUE_METRIC = "resound_socket_outbound_queue_bytes"


def _families(snapshot: Snapshot) -> Iterator[Metric]:
    by_name: dict[str, list[tuple[Labels, float]]] = {}
    for (name, labels), value in snapshot.items():
        by_name.setdefault(name, []).append((labels, value))
    for exposed, kind, label_names, documentation, name in METRICS:
        samples = by_name.get(name)
        if samples is None:
            continue
        family = _FAMILIES[kind](exposed, documentation, labels=label_names)
        for labels, value in sorted(samples):
            family.add_metric([label_value for _, label_value in labels], value)
        yield family
    buckets = sorted(by_name.get("queue_bucket", []), key=lambda sample: float(sample[0][0][1]))
    if buckets:
        yield HistogramMetricFamily(
            QUEUE_METRIC, "Bytes queued for each WebSocket and not yet written, read at scrape "
            "(a distribution now, not a count over time: do not rate() it)",
            buckets=[(labels[0][1], value) for labels, value in buckets],
            sum_value=snapshot.get(("queue_sum", ()), 0))


class SnapshotCollector(Collector):
    """Metric families from ``read()``, called at each scrape (from the endpoint's thread)."""

    def __init__(self, read: Callable[[], Snapshot]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        return _families(self.read())


def serve(host: str, port: int, read: Callable[[], Snapshot]) -> None:
    """Serve ``read()``'s metrics at ``http://host:port/metrics`` from a daemon thread.

    Raises OSError when the address cannot be bound.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(read))
    start_http_server(port, addr=host, registry=registry)
    logger.info("metrics on http://%s:%d/metrics", host, port)
