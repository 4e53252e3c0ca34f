"""Build a server from its configuration: the only place that picks the cluster's twins.

One process (the default): :class:`~broadcaster.cluster.local.LocalBus` and
:class:`~broadcaster.cluster.local.LocalState`, answered in place. With
``REVERB_SCALING_ENABLED``: :class:`~broadcaster.cluster.redis_bus.RedisBus` and
:class:`~broadcaster.cluster.redis_state.RedisState` on one Redis, sharing this node's id (a
presence join's answer comes back on the node's own bus channel), and
:class:`~broadcaster.cluster.idempotency.RedisIdempotency` for triggers' idempotency keys.
"""

from __future__ import annotations

import secrets

from ..cluster.idempotency import RedisIdempotency
from ..cluster.redis_bus import RedisBus
from ..cluster.redis_state import RedisState
from ..config import ServerConfig
from .listener import Server


def build_server(config: ServerConfig) -> Server:
    """The server ``config`` describes; call inside the event loop it will serve."""
    if config.scaling_url is None:
        return Server(config)
    node_id = config.node_id or secrets.token_hex(8)
    bus = RedisBus(config.scaling_url, config.scaling_channel, node_id=node_id)
    return Server(config, bus, RedisState(config.scaling_url, node_id, bus),
                  RedisIdempotency(config.scaling_url, config.idempotency_window))
