"""Build a server from its configuration: the only place that picks the cluster's twins.

One process (the default): :class:`~broadcaster.cluster.local.LocalBus` and
:class:`~broadcaster.cluster.local.LocalState`, answered in place. With
``REVERB_SCALING_ENABLED``: :class:`~broadcaster.cluster.redis_bus.RedisBus` and
:class:`~broadcaster.cluster.redis_state.RedisState` on Redis (one server, Sentinel or Cluster:
``REDIS_URL`` tells), the bus hearing only the channels this node's sockets are on,
:class:`~broadcaster.cluster.idempotency.RedisIdempotency` for triggers' idempotency keys and
:class:`~broadcaster.cluster.api_limits.RedisApiLimits` for the apps' API rate limits.

Also the metrics endpoint, when configured: a collector on a registry of its own, on its port.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from ..cluster.api_limits import RedisApiLimits
from ..cluster.idempotency import RedisIdempotency
from ..cluster.redis_bus import RedisBus
from ..cluster.redis_state import RedisState
from ..config import ServerConfig
from ..metrics.snapshot import Snapshot
from ..webhooks.base import AppHooks, WebhookQueue
from ..webhooks.local import LocalWebhookQueue
from ..webhooks.redis_queue import RedisWebhookQueue
from .listener import Server


class MetricsUnavailable(Exception):
    """The metrics port cannot be bound; the message names it and the settings to change."""


def build_server(config: ServerConfig) -> Server:
    """The server ``config`` describes; call inside the event loop it will serve."""
    if config.scaling_url is None:
        server = Server(config)
        queue: WebhookQueue = LocalWebhookQueue()
    else:
        node_id = config.node_id or secrets.token_hex(8)
        bus = RedisBus(config.scaling_url, config.scaling_channel)
        state = RedisState(config.scaling_url, node_id, bus)
        server = Server(config, bus, state,
                        RedisIdempotency(config.scaling_url, config.idempotency_window),
                        RedisApiLimits(config.scaling_url))
        queue = RedisWebhookQueue(config.scaling_url, node_id, nodes_key=state.nodes_key,
                                  members_key=state.members_key)
    _wire_webhooks(server, queue)
    return server


def _wire_webhooks(server: Server, queue: WebhookQueue) -> None:
    """Give every app with webhooks its hooks, and the server the queue and sender to run."""
    apps = {app.id: app for app in server.config.apps if app.webhooks}
    if not apps:
        return
    # Imported here: without webhooks (the default), aiohttp is never loaded.
    from ..webhooks.sender import Webhooks, WebhookSender

    for app_id, app in apps.items():
        queue.want(app_id, {name for webhook in app.webhooks for name in webhook.event_types})
        server.apps[app_id].hooks = AppHooks(app_id, queue)
    server.services.append(Webhooks(queue, WebhookSender(queue, apps)))


def serve_metrics(config: ServerConfig, read: Callable[[], Snapshot]) -> None:
    """Serve ``/metrics`` from ``read()`` when ``config`` turns metrics on; else nothing.

    Raises MetricsUnavailable when the port cannot be bound.
    """
    if config.metrics_port is None:
        return
    # Imported here: with metrics off (the default), prometheus_client is never loaded.
    from ..metrics import collector

    try:
        collector.serve(config.metrics_host, config.metrics_port, read)
    except OSError as error:
        raise MetricsUnavailable(
            f"cannot serve metrics on {config.metrics_host}:{config.metrics_port}: "
            f"{error.strerror}; set RESOUND_METRICS_PORT (or --metrics-port) to a free port"
        ) from None
