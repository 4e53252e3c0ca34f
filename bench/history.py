"""``python -m bench --history``, its memory part: what kept events cost, on one process and on
Redis.

(The fan-out part, a history channel against a plain one, is ``HISTORY_SCENARIOS`` of
:mod:`bench.scenarios`, run in the rounds of :mod:`bench.cli`.)

One server with the bench's history rule (``hist-*``, limit 100, ttl 3600:
:data:`bench.servers.HISTORY_RULES`), either one process or one node on a throwaway
redis-server. Channels ``hist-mem-<n>`` are filled, :data:`STEPS` of them at a time, with
:data:`LIMIT` events each of :data:`DATA_BYTES` bytes of data, through the HTTP API
(``batch_events`` of 10 events, each to 100 channels: 1,000 publications a request). After each
step the node's RSS and Redis' ``used_memory`` are read; the bytes per kept event are the
growth over the events the step added. The fill is paced (:class:`Filler`): every event a step
published is kept before its memory is read. Then every channel gets :data:`OVERWRITE` more events
(a whole window's worth at full size): the window is full, so the oldest go and memory must not
grow (the limit bounds it). The run fails when a channel does not list exactly its last
:data:`LIMIT` events, as sent, or a request fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import redis

from shared.signatures import sign_request
from tests.servers import HOST

from . import report
from .interest import until_quiet
from .scenarios import MIB
from .servers import APP_ID, APP_KEY, APP_SECRET, HISTORY_RULES, RunningServer, resound

log = logging.getLogger("bench")

LIMIT = HISTORY_RULES[0]["limit"]  # events kept per channel
DATA_BYTES = 200  # each event's data
CHANNELS = {False: 10_000, True: 800}  # history channels filled, by --quick
OVERWRITE = {False: LIMIT, True: 10}  # events more per channel once every window is full
STEPS = (0.25, 0.5, 1.0)  # fractions of the channels filled when memory is read (each a whole
# number of blocks of PER_EVENT channels)
PER_EVENT = 100  # channels one event goes to (the HTTP API's most)
PER_BATCH = 10  # events one batch_events request carries (the HTTP API's most)
SENDERS = 4  # requests in flight
SAMPLE = 20  # channels whose whole window is read back and checked
SETUPS = ("1 process", "1 node on Redis")
SETTLE_TIMEOUT = 30.0  # seconds Redis may take to run the publications a node has accepted


def channel(n: int) -> str:
    return f"hist-mem-{n:05d}"


def event_data(channel_no: int, serial: int) -> str:
    """Exactly DATA_BYTES of data, naming its channel and the serial it should get."""
    head = f"{channel_no}:{serial}:"
    return head + "x" * (DATA_BYTES - len(head))


class Filler:
    """Publishes through one node's HTTP API from SENDERS threads, a kept-alive connection
    each. Channels go in blocks of PER_EVENT (``first`` and ``last`` of a fill are multiples of
    it): one thread sends a block's requests, in order, so each channel's events keep theirs.

    After each block its thread waits until the block's last channel lists the block's last
    event. On Redis the node answers a publication before Redis has run it, and Redis runs
    history publications much slower than a node takes them in: unpaced, the node's queue for
    Redis would fill and it would drop publications (see bench/README.md). Paced, everything
    published has been kept once ``fill`` returns.
    """

    def __init__(self, node: RunningServer) -> None:
        self.node = node
        self.sent: dict[int, int] = {}  # events published so far, per block

    def _bodies(self, block: int, count: int) -> list[bytes]:
        """``batch_events`` bodies giving ``count`` more events to each channel of ``block``."""
        names = [channel(n) for n in range(block, block + PER_EVENT)]
        start = self.sent.get(block, 0)
        self.sent[block] = start + count
        return [json.dumps({"batch": [
            # one data for the block: each channel of it is at the same serial
            {"channels": names, "name": "kept", "data": event_data(block, serial)}
            for serial in range(start + batch + 1, start + min(batch + PER_BATCH, count) + 1)
        ]}).encode() for batch in range(0, count, PER_BATCH)]

    def fill(self, first: int, last: int, count: int) -> list[str]:
        """``count`` events more on each channel of [first, last); what went wrong (a block
        whose last event was not kept within SETTLE_TIMEOUT)."""
        if first % PER_EVENT or last % PER_EVENT:
            raise ValueError(f"fill channels by blocks of {PER_EVENT}, not {first} to {last}")
        blocks = [(block, self._bodies(block, count)) for block in range(first, last, PER_EVENT)]
        with ThreadPoolExecutor(SENDERS) as pool:
            found = pool.map(self._send_blocks, [blocks[i::SENDERS] for i in range(SENDERS)])
        return [problem for problems in found for problem in problems]

    def _send_blocks(self, blocks: list[tuple[int, list[bytes]]]) -> list[str]:
        path = f"/apps/{APP_ID}/batch_events"
        connection = HTTPConnection(HOST, self.node.port, timeout=60)
        problems = []
        try:
            for block, bodies in blocks:
                for body in bodies:
                    query = sign_request(APP_KEY, APP_SECRET, "POST", path, body=body)
                    connection.request("POST", f"{path}?{_query(query)}", body=body,
                                       headers={"Content-Type": "application/json"})
                    answer = connection.getresponse()
                    text = answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"batch_events answered {answer.status}: "
                                           f"{text[:300]!r}")
                problems += _settle(connection, block + PER_EVENT - 1, self.sent[block])
        finally:
            connection.close()
        return problems


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{key}={value}" for key, value in params.items())


def read_window(connection: HTTPConnection, n: int, after: int = 0,
                limit: int = 1000) -> dict[str, Any]:
    """Channel ``n``'s history after ``after`` as the HTTP API lists it (or its error)."""
    path = f"/apps/{APP_ID}/channels/{channel(n)}/events"
    query = sign_request(APP_KEY, APP_SECRET, "GET", path,
                         {"after": str(after), "limit": str(limit)})
    connection.request("GET", f"{path}?{_query(query)}")
    answer = connection.getresponse()
    found = json.loads(answer.read() or b"null")
    return found if answer.status == 200 else {"error": answer.status, "reason": found}


def _read_failed(n: int, found: dict[str, Any]) -> list[str]:
    return [f"{channel(n)}: the history read answered {found['error']} {found['reason']}"]


def _settle(connection: HTTPConnection, n: int, sent: int) -> list[str]:
    """Wait (SETTLE_TIMEOUT at most) until channel ``n`` lists its ``sent``-th event; what
    went wrong."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        found = read_window(connection, n, sent - 1, 1)
        if "error" in found:
            return _read_failed(n, found)
        if found["latest"] >= sent:
            return []
        if time.monotonic() > deadline:
            return [f"{channel(n)}: latest {found['latest']} {SETTLE_TIMEOUT:.0f} s after the "
                    f"{sent}th event was published"]
        time.sleep(0.01)


def window_problems(node: RunningServer, n: int, sent: int) -> list[str]:
    """What is wrong with channel ``n``'s window after ``sent`` events: it must list exactly
    the last LIMIT of them, in order, as sent."""
    connection = HTTPConnection(HOST, node.port, timeout=30)
    try:
        found = read_window(connection, n)
    finally:
        connection.close()
    if "error" in found:
        return _read_failed(n, found)
    block = n - n % PER_EVENT
    wanted = list(range(max(1, sent - LIMIT + 1), sent + 1))
    serials = [event["serial"] for event in found["events"]]
    problems = []
    if (found["latest"], found["oldest"]) != (sent, wanted[0]) or serials != wanted:
        problems.append(f"{channel(n)}: latest {found['latest']}, oldest {found['oldest']}, "
                        f"{len(serials)} events listed; wanted latest {sent}, the last "
                        f"{len(wanted)} kept")
    elif any(event["data"] != event_data(block, event["serial"]) for event in found["events"]):
        problems.append(f"{channel(n)}: an event's data is not what was sent")
    return problems


@contextmanager
def _redis_memory(node: RunningServer) -> Iterator[Callable[[], int | None]]:
    """A reader of the node's redis-server ``used_memory`` (None on one process)."""
    if node.redis_url is None:
        yield lambda: None
        return
    client = redis.Redis.from_url(node.redis_url)
    try:
        yield lambda: int(client.info("memory")["used_memory"])
    finally:
        client.close()


def _reading(node: RunningServer, used_memory: Callable[[], int | None], channels: int,
             kept: int) -> dict[str, Any]:
    return {"channels": channels, "events_kept": kept, "node_rss": node.rss_bytes(),
            "redis_used_memory": used_memory()}


class Costs:
    """The node's and its redis-server's CPU and the wall time over the fills (each paced:
    every event is kept when it returns)."""

    def __init__(self, node: RunningServer) -> None:
        self.node = node
        self.published = 0
        self.seconds = self.node_cpu = self.redis_cpu = 0.0

    @contextmanager
    def counting(self, publications: int) -> Iterator[None]:
        cpu, redis_cpu = self.node.cpu_seconds(), self.node.redis_cpu_seconds() or 0.0
        started = time.monotonic()
        yield
        self.seconds += time.monotonic() - started
        asyncio.run(until_quiet(self.node))  # what is left of the work counts, not the wait
        self.node_cpu += self.node.cpu_seconds() - cpu
        self.redis_cpu += (self.node.redis_cpu_seconds() or 0.0) - redis_cpu
        self.published += publications

    def figures(self) -> dict[str, float | None]:
        return {"publications_per_s": self.published / self.seconds,
                "node_cpu_us_per_publication": self.node_cpu * 1e6 / self.published,
                "redis_cpu_us_per_publication": (self.redis_cpu * 1e6 / self.published
                                                 if self.node.redis_url else None)}


def measure(node: RunningServer, channels: int, overwrite: int) -> dict[str, Any]:
    """Fill ``channels`` history channels step by step, then give each ``overwrite`` more
    events; the readings."""
    filler, costs = Filler(node), Costs(node)
    problems: list[str] = []
    with _redis_memory(node) as used_memory:
        # warm-up: code paths, connections
        problems += filler.fill(channels, channels + PER_EVENT, 1)
        asyncio.run(until_quiet(node))
        steps = [_reading(node, used_memory, 0, 0)]
        done = 0
        for fraction in STEPS:
            goal = round(channels * fraction)
            with costs.counting((goal - done) * LIMIT):
                problems += filler.fill(done, goal, LIMIT)
            done = goal
            steps.append(_reading(node, used_memory, done, done * LIMIT))
            log.info("  %s", steps[-1])
        problems += filler.fill(0, channels, overwrite)
        asyncio.run(until_quiet(node))
        overwritten = _reading(node, used_memory, channels, channels * LIMIT)
        log.info("  after %d more events per channel: %s", overwrite, overwritten)
    for n in range(0, channels, max(1, channels // SAMPLE)):
        problems += window_problems(node, n, LIMIT + overwrite)
    return {"steps": steps, "overwritten": overwritten, "fill": costs.figures(),
            "frame_bytes": _frame_bytes(node), "problems": problems}


def _frame_bytes(node: RunningServer) -> int | None:
    """The length of one kept frame as subscribers get it (with its serial and epoch); None
    when none is kept."""
    connection = HTTPConnection(HOST, node.port, timeout=30)
    try:
        found = read_window(connection, 0)
    finally:
        connection.close()
    if not found.get("events"):
        return None
    event = found["events"][-1]
    message = {"event": event["event"], "channel": channel(0), "data": event["data"]}
    return len(json.dumps(message, separators=(",", ":"))) + len(
        f',"serial":{event["serial"]},"epoch":"{found["epoch"]}"')


def run(out_dir: Path, command: list[str] | None, quick: bool) -> tuple[str, bool]:
    """The memory part on one process, then on one node on Redis; the markdown table and
    whether both passed."""
    channels = CHANNELS[quick]
    records = []
    for setup, scaling in zip(SETUPS, (False, True), strict=True):
        log.info("history memory: %s channels x %d events on %s", f"{channels:,}", LIMIT, setup)
        record: dict[str, Any] = {"setup": setup, "uptime_start": report.uptime()}
        try:
            with resound(out_dir, command, scaling=scaling,
                         app={"history": HISTORY_RULES}) as node:
                record.update(measure(node, channels, OVERWRITE[quick]))
        except Exception as exc:  # reported, not raised: the table says what failed
            record["problems"] = [f"{type(exc).__name__}: {exc}"]
        record["uptime_end"] = report.uptime()
        for problem in record["problems"]:
            log.error("  FAILED: %s", problem)
        records.append(record)
    document = {"machine": report.machine(), "channels": channels, "limit": LIMIT,
                "data_bytes": DATA_BYTES, "overwrite": OVERWRITE[quick], "setups": records}
    (out_dir / "history-memory.json").write_text(json.dumps(document, indent=2))
    table = markdown(document)
    (out_dir / "history-memory.md").write_text(table + "\n")
    return table, not any(record["problems"] for record in records)


def _per_event(before: dict[str, Any], after: dict[str, Any], key: str) -> str:
    """The growth of ``key`` from ``before`` to ``after`` per event kept meanwhile, in bytes."""
    added = after["events_kept"] - before["events_kept"]
    if after[key] is None or not added:
        return "—"
    return f"{(after[key] - before[key]) / added:,.0f}"


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / MIB:,.1f}"


def _grown(before: dict[str, Any], after: dict[str, Any], key: str) -> str:
    """The growth of ``key`` from ``before`` to ``after``, in MiB, signed."""
    return "—" if after[key] is None else f"{(after[key] - before[key]) / MIB:+,.1f}"


def _setup_lines(record: dict[str, Any], overwrite: int) -> list[str]:
    steps, over, fill = record["steps"], record["overwritten"], record["fill"]
    base, full = steps[0], steps[-1]
    on_redis = full["redis_used_memory"] is not None
    lines = [f"One kept frame as subscribers get it: {record['frame_bytes'] or '—'} bytes. "
             f"Filled at {fill['publications_per_s']:,.0f} publications/s; node CPU "
             f"{fill['node_cpu_us_per_publication']:.1f} µs/publication"
             + (f", redis-server CPU {fill['redis_cpu_us_per_publication']:.1f} µs/publication"
                if on_redis else "") + ".", "",
             "| Channels filled | events kept | node RSS (MiB) | node bytes/event (this step) | "
             "Redis used_memory (MiB) | Redis bytes/event (this step) |",
             "|---:|---:|---:|---:|---:|---:|"]
    for before, step in zip([base, *steps[:-1]], steps, strict=True):
        lines.append(f"| {step['channels']:,} | {step['events_kept']:,} | "
                     f"{_mib(step['node_rss'])} | {_per_event(before, step, 'node_rss')} | "
                     f"{_mib(step['redis_used_memory'])} | "
                     f"{_per_event(before, step, 'redis_used_memory')} |")
    lines.append(f"| all, +{overwrite} events each | {over['events_kept']:,} | "
                 f"{_mib(over['node_rss'])} ({_grown(full, over, 'node_rss')}) | — | "
                 f"{_mib(over['redis_used_memory'])} "
                 + (f"({_grown(full, over, 'redis_used_memory')}) " if on_redis else "")
                 + "| — |")
    lines += ["", f"Totals for {full['events_kept']:,} kept events: node RSS "
              f"{_grown(base, full, 'node_rss')} MiB ({_per_event(base, full, 'node_rss')} "
              "bytes/event)" + (f", Redis used_memory {_grown(base, full, 'redis_used_memory')} "
                                f"MiB ({_per_event(base, full, 'redis_used_memory')} bytes/event)"
                                if on_redis else "") + "."]
    return lines


def markdown(document: dict[str, Any]) -> str:
    info = document["machine"]
    lines = [
        f"Measured {info['date']} on {info['nproc']} × {info['cpu']} (Linux {info['kernel']}), "
        f"Python {info['python']}; Resound at {info['resound']}. History rule `hist-*`, limit "
        f"{document['limit']}; {document['channels']:,} channels filled with "
        f"{document['limit']} events of {document['data_bytes']} bytes of data each "
        "(10 events to 100 channels each a `batch_events` request), then "
        f"{document['overwrite']} more each (the windows full: the oldest go).",
    ]
    for record in document["setups"]:
        lines += ["", f"**{record['setup']}** (`uptime` at the start: `{record['uptime_start']}`;"
                  f" at the end: `{record['uptime_end']}`)"]
        if record.get("steps"):
            lines += _setup_lines(record, document["overwrite"])
        lines.extend(f"- FAILED: {problem}" for problem in record["problems"])
    return "\n".join(lines)
