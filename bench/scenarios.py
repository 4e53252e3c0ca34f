"""The benchmark scenarios: their sizes (full and --quick), and the figures each one reports.

A scenario compares two sides: Resound against soketi, or (the cluster scenarios, ``--cluster``)
a Resound cluster setup against one Resound process, or (``--cluster --redis cluster``) the
setup on a Redis Cluster against the same setup on one redis-server. A figure names whether
higher or lower is better and, where the issue sets one, its target as a bound on the ratio of
the first side to the second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class Figure:
    """One reported number, computed from a run's result (load generator plus server figures)."""

    key: str
    label: str
    higher_is_better: bool
    compute: Callable[[dict[str, Any]], float | None]
    target: float | None = None  # ratio bound: >= target when higher is better, else <=
    ratio: bool = True  # False for context figures (server CPU %) that compare nothing

    def target_text(self) -> str:
        if self.target is None:
            return ""
        return f"{'>=' if self.higher_is_better else '<='} {self.target:g}x"

    def meets(self, ratio: float | None) -> bool | None:
        if self.target is None or ratio is None:
            return None
        return ratio >= self.target if self.higher_is_better else ratio <= self.target


SOKETI_SIDES = ("resound", "soketi")


@dataclass(frozen=True)
class Scenario:
    name: str
    loadgen: str  # the loadgen.mjs scenario
    full: dict[str, Any]
    quick: dict[str, Any]
    figures: tuple[Figure, ...]
    describe: Callable[[dict[str, Any]], str]  # the sizes in words, for the report
    sides: tuple[str, str] = SOKETI_SIDES  # measured side, reference side (the ratio's divisor)
    # More load-generator parameters for one side (e.g. the channel it publishes on)
    side_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def cluster(self) -> bool:
        return self.sides != SOKETI_SIDES

    def params(self, side: str, quick: bool) -> dict[str, Any]:
        """The load generator's parameters for a run on ``side``."""
        return {**(self.quick if quick else self.full), **self.side_params.get(side, {})}


def _get(key: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda result: result.get(key)


def _per_delivery_us(result: dict[str, Any]) -> float | None:
    deliveries = result.get("deliveries")
    return result["server_cpu_seconds"] * 1e6 / deliveries if deliveries else None


def _redis_per_delivery_us(result: dict[str, Any]) -> float | None:
    deliveries = result.get("deliveries")
    redis = result.get("redis_cpu_seconds")
    return redis * 1e6 / deliveries if deliveries and redis is not None else None


def _per_connection_us(result: dict[str, Any]) -> float:
    return result["server_cpu_seconds"] * 1e6 / result["connections"]


def _rss_per_connection_kib(result: dict[str, Any]) -> float:
    grown = result["server_rss_loaded_bytes"] - result["server_rss_start_bytes"]
    return grown / result["connections"] / KIB


def _rss_total_mib(result: dict[str, Any]) -> float:
    return result["server_rss_loaded_bytes"] / MIB


def _cpu_figures() -> tuple[Figure, ...]:
    """How busy the server was (the load generator's CPU is a column beside every figure)."""
    return (
        Figure("server_cpu_pct", "server CPU (% of a core)", False, _get("server_cpu_pct"),
               ratio=False),
    )


def _latency_figures(p99_target: float | None, with_max: bool) -> tuple[Figure, ...]:
    figures = (
        Figure("latency_p50_ms", "latency p50 (ms)", False, _get("latency_p50_ms")),
        Figure("latency_p99_ms", "latency p99 (ms)", False, _get("latency_p99_ms"), p99_target),
    )
    if with_max:
        figures += (Figure("latency_max_ms", "latency max (ms)", False, _get("latency_max_ms")),)
    return figures


def _idle(connections: int, quick: int, total_target: float | None) -> Scenario:
    figures = (
        Figure("rss_per_connection_kib", "RSS per connection (KiB)", False,
               _rss_per_connection_kib, 1.0),
        Figure("rss_total_mib", "RSS total (MiB)", False, _rss_total_mib, total_target),
    )
    return Scenario(f"idle-{connections}", "idle", {"connections": connections},
                    {"connections": quick}, figures,
                    lambda p: f"{p['connections']} connections, each on its own private channel")


def _presence(name: str, members: int, quick: int) -> Scenario:
    figures = (
        Figure("consistent_ms", "time to consistent lists (ms)", False, _get("consistent_ms")),
        Figure("join_ms", "all joined (ms)", False, _get("join_ms")),
        Figure("leave_ms", "half left (ms)", False, _get("leave_ms")),
        *_cpu_figures(),
    )
    return Scenario(name, "presence", {"members": members, "timeoutSeconds": 60},
                    {"members": quick, "timeoutSeconds": 30}, figures,
                    lambda p: (f"{p['members']} members join one presence channel, then half "
                               "leave; until every member list matches"))


FANOUT_FULL = {"subscribers": 1000, "seconds": 10, "inflight": 4, "backlog": 16,
               "maxEvents": 100_000}
FANOUT_QUICK = {**FANOUT_FULL, "subscribers": 500, "seconds": 2}
HANDSHAKES_FULL = {"connections": 2000, "connectConcurrency": 100}
HANDSHAKES_QUICK = {"connections": 300, "connectConcurrency": 100}


def _describe_fanout(p: dict[str, Any]) -> str:
    return (f"{p['subscribers']} subscribers on one channel, {p['seconds']} s of HTTP triggers, "
            f"{p['inflight']} requests in flight (at most {p['backlog']} events not yet fully "
            "delivered)")


def _describe_handshakes(p: dict[str, Any]) -> str:
    return f"{p['connections']} connect + private subscribe, {p['connectConcurrency']} at once"


def _handshake_figures() -> tuple[Figure, ...]:
    return (Figure("cpu_us_per_connection", "server CPU µs/connection", False, _per_connection_us),
            Figure("handshake_p50_ms", "connect to subscribed p50 (ms)", False,
                   _get("handshake_p50_ms")),
            Figure("handshake_p99_ms", "connect to subscribed p99 (ms)", False,
                   _get("handshake_p99_ms")),
            *_cpu_figures())


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "fanout", "fanout", FANOUT_FULL, FANOUT_QUICK,
        (
            Figure("deliveries_per_s", "deliveries/s", True, _get("deliveries_per_s"), 1.3),
            Figure("cpu_us_per_delivery", "server CPU µs/delivery", False, _per_delivery_us),
            *_latency_figures(0.8, with_max=False),
            *_cpu_figures(),
        ),
        _describe_fanout,
    ),
    Scenario(
        "latency", "latency",
        {"subscribers": 1000, "rate": 20, "seconds": 10},
        {"subscribers": 200, "rate": 20, "seconds": 2},
        (*_latency_figures(0.8, with_max=True), *_cpu_figures()),
        lambda p: f"{p['subscribers']} subscribers, {p['rate']} events/s for {p['seconds']} s",
    ),
    _idle(5000, 500, None),
    _idle(10000, 1000, 0.6),
    Scenario(
        "handshakes", "handshakes", HANDSHAKES_FULL, HANDSHAKES_QUICK,
        (Figure("connections_per_s", "connections/s", True, _get("connections_per_s"), 1.0),
         *_handshake_figures()),
        _describe_handshakes,
    ),
    _presence("presence", 500, 100),
    _presence("presence-100", 100, 50),  # within both servers' default of 100 members
)

# Cluster setups (bench/servers.py CLUSTER_LAUNCHERS) against one process without scaling.
SINGLE = "1 process"
CONNECTIONS_PER_S = Figure("connections_per_s", "connections/s", True, _get("connections_per_s"))
CLUSTER_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "presence-subscribe", "presenceSubscribe",
        {"members": 300, "concurrency": 10}, {"members": 60, "concurrency": 10},
        (Figure("subscribe_p50_ms", "presence subscribe p50 (ms)", False,
                _get("subscribe_p50_ms")),
         Figure("subscribe_p99_ms", "presence subscribe p99 (ms)", False,
                _get("subscribe_p99_ms")),
         *_cpu_figures()),
        lambda p: (f"{p['members']} members join one presence channel (signed channel_data), "
                   f"{p['concurrency']} at once, spread over the nodes; pusher:subscribe to "
                   "subscription_succeeded"),
        ("3 nodes on Redis", SINGLE),
    ),
    Scenario(
        "handshakes-redis", "handshakes", HANDSHAKES_FULL, HANDSHAKES_QUICK,
        (CONNECTIONS_PER_S, *_handshake_figures()), _describe_handshakes,
        ("1 node on Redis", SINGLE),
    ),
    Scenario(
        "fanout-workers", "fanout", FANOUT_FULL, FANOUT_QUICK,
        (
            Figure("cpu_us_per_delivery", "server CPU µs/delivery", False, _per_delivery_us, 1.2),
            Figure("deliveries_per_s", "deliveries/s", True, _get("deliveries_per_s")),
            Figure("redis_cpu_us_per_delivery", "redis-server CPU µs/delivery", False,
                   _redis_per_delivery_us, ratio=False),
            *_latency_figures(None, with_max=False),
            *_cpu_figures(),
        ),
        _describe_fanout,
        ("--workers 2 on Redis", SINGLE),
    ),
)


# Each cluster scenario's setup on a Redis Cluster (3 masters, 3 replicas) against the same setup
# on one redis-server: the setup's name on a cluster is its name on Redis + " Cluster".
ON_CLUSTER = "-on-cluster"  # the suffix of their names
REDIS_CLUSTER_SCENARIOS: tuple[Scenario, ...] = tuple(
    replace(scenario, name=scenario.name + ON_CLUSTER,
            figures=tuple(replace(figure, target=None) for figure in scenario.figures),
            sides=(scenario.sides[0] + " Cluster", scenario.sides[0]))
    for scenario in CLUSTER_SCENARIOS
)


def _fanout_with(name: str, side: str) -> Scenario:
    """The fan-out load on ``side`` (a setup of one process) against :data:`SINGLE`."""
    return Scenario(
        name, "fanout", FANOUT_FULL, FANOUT_QUICK,
        (
            Figure("cpu_us_per_delivery", "server CPU µs/delivery", False, _per_delivery_us),
            Figure("deliveries_per_s", "deliveries/s", True, _get("deliveries_per_s")),
            *_latency_figures(None, with_max=False),
            *_cpu_figures(),
        ),
        _describe_fanout,
        (side, SINGLE),
    )


# One Resound process with metrics on (scraped every second) against the same without them.
METRICS_ON = "metrics on"
METRICS_SCENARIOS: tuple[Scenario, ...] = (
    _fanout_with("fanout-metrics", METRICS_ON),
    Scenario(
        "handshakes-metrics", "handshakes", HANDSHAKES_FULL, HANDSHAKES_QUICK,
        (CONNECTIONS_PER_S, *_handshake_figures()), _describe_handshakes,
        (METRICS_ON, SINGLE),
    ),
)

# One Resound process with occupancy and member webhooks on (to a receiver answering 200)
# against the same without webhooks.
WEBHOOKS_ON = "webhooks on"
WEBHOOK_SCENARIOS: tuple[Scenario, ...] = (_fanout_with("fanout-webhooks", WEBHOOKS_ON),)

# Fan-out on a history channel (its name matches the app's history rule, bench/servers.py
# HISTORY_RULES) against fan-out on a plain channel, on the same server setup; and a plain
# channel on a server with that rule against one without any. ``history`` tells the load
# generator to read the channel's history back after the run: "kept" (every event published
# got a serial, the last ones read back as sent) or "none" (the channel keeps none: HTTP 404);
# report.failures fails the run otherwise.
HISTORY_CHANNEL = "hist-bench"
HISTORY_ON = "history channel"
PLAIN_ON = "plain channel"
RULE_SET = "plain channel, history rule set"
NO_RULE = "plain channel, no history rule"
HISTORY_REDIS = "history channel, 2 nodes on Redis"
PLAIN_REDIS = "plain channel, 2 nodes on Redis"
KEPT = {"channel": HISTORY_CHANNEL, "history": "kept"}
NOT_KEPT = {"history": "none"}  # on the load generator's default channel, "bench"
HISTORY_TARGET = 1.2  # fan-out on a history channel costs at most 1.2x a plain one (issue 19)


def _fanout_history(name: str, sides: tuple[str, str], kept: tuple[bool, bool],
                    target: float | None, redis: bool = False) -> Scenario:
    """The fan-out load on both ``sides``, each on a channel that ``kept`` says keeps history
    or not; ``target`` bounds the server's CPU per delivery (first side / second)."""
    figures = (
        Figure("cpu_us_per_delivery", "server CPU µs/delivery", False, _per_delivery_us, target),
        Figure("deliveries_per_s", "deliveries/s", True, _get("deliveries_per_s")),
        *_latency_figures(None, with_max=False),
        *((Figure("redis_cpu_us_per_delivery", "redis-server CPU µs/delivery", False,
                  _redis_per_delivery_us),) if redis else ()),
        *_cpu_figures(),
    )
    return Scenario(name, "fanout", FANOUT_FULL, FANOUT_QUICK, figures, _describe_fanout, sides,
                    {side: KEPT if keeps else NOT_KEPT
                     for side, keeps in zip(sides, kept, strict=True)})


HISTORY_SCENARIOS: tuple[Scenario, ...] = (
    _fanout_history("fanout-history", (HISTORY_ON, PLAIN_ON), (True, False), HISTORY_TARGET),
    _fanout_history("fanout-history-rule", (RULE_SET, NO_RULE), (False, False), None),
    _fanout_history("fanout-history-redis", (HISTORY_REDIS, PLAIN_REDIS), (True, False),
                    HISTORY_TARGET, redis=True),
)

BY_NAME = {scenario.name: scenario for scenario in
           (*SCENARIOS, *CLUSTER_SCENARIOS, *REDIS_CLUSTER_SCENARIOS, *METRICS_SCENARIOS,
            *WEBHOOK_SCENARIOS, *HISTORY_SCENARIOS)}
