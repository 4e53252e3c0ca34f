"""``python -m bench --abuse``: unauthenticated attacks on Resound and soketi, side by side.

Each attack runs for a while against a fresh server process, driven from this process with
asyncio over raw sockets. Meanwhile a sampler reads the server's RSS every 0.1 s (the peak), and
a normal client, on a thread of its own, checks every 2 s that it is still served: a WebSocket
connects, subscribes, and receives an event triggered through the signed HTTP API, each step
within 5 s. Once the attack's sockets are closed, the RSS is read again after 6 s ("after").
The bar: the normal client is served throughout, and the peak stays under 256 MB.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.sync.client import connect as ws_connect

from shared.signatures import sign_request
from tests.certificates import make_certificates
from tests.servers import HOST

from . import report
from .servers import APP_ID, APP_KEY, APP_SECRET, Launcher, RunningServer

log = logging.getLogger("bench")

PEAK_BAR = 256 * 1024 * 1024  # bytes of RSS an attack may raise the server to
PROBE_EVERY = 2.0  # seconds between the normal client's checks
PROBE_TIMEOUT = 5.0  # seconds each step of a check may take
SETTLE = 6.0  # seconds after the attack before "after" is read
SMALL_BUFFER = 4096  # receive buffer of a socket that never reads


@dataclass(frozen=True)
class Attack:
    name: str
    what: str
    # (server, seconds) -> what the attacker saw, e.g. "cut off 12 times"
    run: Callable[[RunningServer, float], Awaitable[str]]
    tls: bool = False  # the server speaks wss and https (the normal client too)
    descriptors: int | None = None  # the server's RLIMIT_NOFILE during the attack


def _raw(server: RunningServer) -> tuple[str, int]:
    return HOST, server.port


async def _open(server: RunningServer, small: bool = False) -> tuple[asyncio.StreamReader,
                                                                     asyncio.StreamWriter]:
    sock = socket.socket()
    if small:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, _raw(server))
    return await asyncio.open_connection(sock=sock)


async def _flood(opened: Callable[[], Awaitable[asyncio.StreamWriter]], data: bytes,
                 seconds: float, limit: int) -> str:
    """Send ``data`` again and again, never reading, for ``seconds`` or ``limit`` bytes in
    all; cut off, connect again. How many times the server cut the sender off."""
    end, sent, cut_off = time.monotonic() + seconds, 0, 0
    while time.monotonic() < end and sent < limit:
        writer = None
        try:
            writer = await opened()
            while time.monotonic() < end and sent < limit:
                writer.write(data)
                sent += len(data)
                await asyncio.wait_for(writer.drain(), max(0.01, end - time.monotonic()))
        except TimeoutError:
            pass  # still stuck at the end: the server neither read nor cut us off
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            cut_off += 1
            await asyncio.sleep(0.1)
        if writer is not None:
            writer.transport.abort()
    return f"{sent / 1e6:.0f} MB sent, cut off {cut_off} times"


async def pipelined(server: RunningServer, seconds: float) -> str:
    path = "/up" if server.name == "resound" else "/"

    async def opened() -> asyncio.StreamWriter:
        return (await _open(server, small=True))[1]

    return await _flood(opened, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * 3000,
                        seconds, 100_000_000)


async def slowloris(server: RunningServer, seconds: float) -> str:
    """2,000 connections, each trickling one header byte a second; a closed one reconnects."""
    end = time.monotonic() + seconds
    cut_off = [0]

    async def one() -> None:
        while time.monotonic() < end:
            try:
                _, writer = await _open(server)
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
                while time.monotonic() < end and not writer.transport.is_closing():
                    await asyncio.sleep(1.0)
                    writer.write(b"X")
                    await writer.drain()
                writer.transport.abort()
            except (ConnectionError, OSError):
                cut_off[0] += 1
                await asyncio.sleep(0.5)

    await asyncio.gather(*(one() for _ in range(2000)))
    return f"cut off {cut_off[0]} times"


async def large_body(server: RunningServer, seconds: float) -> str:
    """1,000 connections each posting almost 1 MB to an unsigned request, at full speed."""
    end = time.monotonic() + seconds
    size = 990_000
    body = b"x" * size
    cut_off = [0]

    async def one() -> None:
        try:
            _, writer = await _open(server)
            writer.write(f"POST /apps/{APP_ID}/events HTTP/1.1\r\nHost: x\r\n"
                         f"Content-Length: {size}\r\n\r\n".encode() + body)
            await asyncio.wait_for(writer.drain(), seconds)
            await asyncio.sleep(max(0.0, end - time.monotonic()))  # hold the connection
            writer.transport.abort()
        except (ConnectionError, OSError, TimeoutError):
            cut_off[0] += 1

    await asyncio.gather(*(one() for _ in range(1000)))
    return f"cut off {cut_off[0]} times while sending"


async def signed_head(server: RunningServer, seconds: float) -> str:
    """1,000 connections POST 990 kB each with the app's (public) key, a fresh timestamp, the
    body's MD5 and a bad signature, a 16 kB chunk every 0.1 s, and hold: a server that checks
    the head answers 401 before the body; one that buffers first holds about 1 GB."""
    end = time.monotonic() + seconds
    size, chunk = 990_000, b"x" * 16_384
    path = f"/apps/{APP_ID}/events"
    params = sign_request(APP_KEY, APP_SECRET, "POST", path, body=b"x" * size)
    params["auth_signature"] = "0" * 64
    head = (f"POST {path}?{urllib.parse.urlencode(params)} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n").encode()
    early, answered, cut_off = [0], [0], [0]

    async def one() -> None:
        try:
            reader, writer = await _open(server)
            writer.write(head)
            reply = asyncio.ensure_future(reader.read(12))
            sent = 0
            while sent < size and not reply.done() and time.monotonic() < end:
                writer.write(chunk[:size - sent])
                sent += min(len(chunk), size - sent)
                await asyncio.wait_for(writer.drain(), max(0.01, end - time.monotonic()))
                await asyncio.sleep(0.1)
            await asyncio.wait([reply], timeout=max(0.0, end - time.monotonic()))
            if reply.done() and not reply.exception() and reply.result():
                answered[0] += 1
                early[0] += sent < size
            reply.cancel()
            await asyncio.sleep(max(0.0, end - time.monotonic()))  # hold the connection
            writer.transport.abort()
        except (ConnectionError, OSError, TimeoutError):
            cut_off[0] += 1

    await asyncio.gather(*(one() for _ in range(1000)))
    return (f"{answered[0]} answered, {early[0]} before their body was sent; "
            f"cut off {cut_off[0]} times")


async def tls_silent(server: RunningServer, seconds: float) -> str:
    """2,100 TCP connections to the TLS port that never send a ClientHello, each opened again
    once the server closes it (the server's descriptors are limited to 2,048)."""
    end = time.monotonic() + seconds
    closed = [0]

    async def one() -> None:
        while time.monotonic() < end:
            try:
                reader, writer = await _open(server)
                try:
                    await asyncio.wait_for(reader.read(1), max(0.01, end - time.monotonic()))
                    closed[0] += 1
                except TimeoutError:
                    pass  # still open at the end
                writer.transport.abort()
            except (ConnectionError, OSError):
                closed[0] += 1
                await asyncio.sleep(0.5)

    await asyncio.gather(*(one() for _ in range(2100)))
    return f"closed by the server {closed[0]} times"


def _masked(opcode: int, payload: bytes) -> bytes:
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


async def _websocket(server: RunningServer, small: bool,
                     channel: str | None = None) -> asyncio.StreamWriter:
    reader, writer = await _open(server, small)
    writer.write(f"GET /app/{APP_KEY}?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    await asyncio.wait_for(reader.readuntil(b"connection_established"), 10)
    if channel:
        subscribe = json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}})
        writer.write(_masked(1, subscribe.encode()))
        await asyncio.wait_for(reader.readuntil(b"subscription_succeeded"), 10)
    return writer


async def ping_flood(server: RunningServer, seconds: float) -> str:
    return await _flood(lambda: _websocket(server, small=True), _masked(9, b"p" * 125) * 1000,
                        seconds, 100_000_000)


def _trigger(server: RunningServer, channel: str, data: str) -> int:
    path = f"/apps/{APP_ID}/events"
    body = json.dumps({"name": "abuse", "channels": [channel], "data": data}).encode()
    query = "&".join(f"{key}={value}" for key, value in
                     sign_request(APP_KEY, APP_SECRET, "POST", path, body=body).items())
    request = urllib.request.Request(f"{server.http_url}{path}?{query}", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT,
                                context=server.ssl_context()) as response:
        return response.status


async def slow_consumers(server: RunningServer, seconds: float) -> str:
    """500 subscribers that never read, while 4 triggers at a time publish 9 kB events (both
    servers' default limits take them: Resound's 10,000-byte messages, soketi's 100 kB)."""
    writers = await asyncio.gather(*(_websocket(server, True, "abuse") for _ in range(500)))
    end, data = time.monotonic() + seconds, "x" * 9_000
    loop = asyncio.get_running_loop()
    triggered, refused = [0], [0]

    async def trigger() -> None:
        while time.monotonic() < end:
            try:
                await loop.run_in_executor(None, _trigger, server, "abuse", data)
                triggered[0] += 1
            except OSError:
                refused[0] += 1
                await asyncio.sleep(0.05)

    await asyncio.gather(*(trigger() for _ in range(4)))
    for writer in writers:
        writer.transport.abort()
    return (f"{triggered[0]} events ({triggered[0] * len(data) * 500 / 1e6:.0f} MB to "
            f"deliver), {refused[0]} triggers failed")


ATTACKS = (
    Attack("pipelined", "1 connection sends up to 100 MB of pipelined GETs, never reads",
           pipelined),
    Attack("slowloris", "2,000 connections trickle a header byte a second, reconnecting",
           slowloris),
    Attack("large-body", "1,000 connections POST 990 kB each, unsigned, and hold", large_body),
    Attack("signed-head", "1,000 connections POST 990 kB each with the public key and a bad "
           "signature, slowly, and hold", signed_head),
    Attack("tls-silent", "2,100 silent connections on the TLS port, reopened as closed; "
           "the server has 2,048 descriptors", tls_silent, tls=True, descriptors=2048),
    Attack("ping-flood", "1 WebSocket sends up to 100 MB of pings, never reads", ping_flood),
    Attack("slow-consumers", "500 subscribers never read; 9 kB events, 4 triggers at a time",
           slow_consumers),
)


def _probe(server: RunningServer) -> str | None:
    """One normal client's visit: what went wrong, or None."""
    try:
        with ws_connect(server.ws_url, open_timeout=PROBE_TIMEOUT, close_timeout=1,
                        ssl=server.ssl_context()) as client:
            greeting = json.loads(client.recv(timeout=PROBE_TIMEOUT))
            if greeting.get("event") != "pusher:connection_established":
                return f"greeted with {greeting.get('event')}"
            client.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "probe"}}))
            client.recv(timeout=PROBE_TIMEOUT)
            if _trigger(server, "probe", "hello") != 200:
                return "trigger refused"
            event = json.loads(client.recv(timeout=PROBE_TIMEOUT))
            return None if event.get("event") == "abuse" else f"got {event.get('event')}"
    except Exception as exc:  # every failure of the normal client is the finding
        return f"{type(exc).__name__}: {exc}"[:200]


def measure(attack: Attack, server: RunningServer, seconds: float) -> dict[str, Any]:
    """Run ``attack`` on ``server``: RSS before, peak and after, and the normal client."""
    time.sleep(1.0)
    if attack.descriptors is not None:
        for pid in server.pids:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (attack.descriptors,) * 2)
    baseline = server.rss_bytes()
    peak = [baseline]
    failures: list[str] = []
    probes = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], server.rss_bytes())
            except Exception:  # the server died: the record says so below
                return
            time.sleep(0.1)

    def probe() -> None:
        while True:  # at once, then every PROBE_EVERY s while the attack lasts
            probes[0] += 1
            failure = _probe(server)
            if failure:
                failures.append(failure)
            if done.wait(PROBE_EVERY):
                return

    threads = [threading.Thread(target=sample), threading.Thread(target=probe)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    saw = "—"
    try:
        saw = asyncio.run(attack.run(server, seconds))
    finally:
        lasted = time.monotonic() - started
        done.set()
        for thread in threads:
            thread.join(PROBE_TIMEOUT * 4)
    time.sleep(SETTLE)
    after = server.rss_bytes()
    served = probes[0] > 0 and not failures
    return {"baseline": baseline, "peak": peak[0], "after": after, "lasted": lasted,
            "attacker_saw": saw, "probes": probes[0],
            "failures": failures[:5], "served": served,
            "meets_bar": served and peak[0] < PEAK_BAR}


def run(server_names: list[str], launchers: dict[str, Launcher], out_dir: Path,
        seconds: float = 15.0, attacks: list[str] | None = None) -> tuple[str, bool]:
    """Every attack (or those named in ``attacks``) on every server (fresh each time); the
    Markdown table and whether every Resound run met the bar."""
    started = report.load_average()
    rows: list[dict[str, Any]] = []
    certificates = make_certificates(out_dir)  # for the attacks on a TLS port
    for attack in ATTACKS:
        if attacks and attack.name not in attacks:
            continue
        for name in server_names:
            log.info("abuse: %s on %s", attack.name, name)
            record: dict[str, Any] = {"attack": attack.name, "server": name,
                                      "load_average": report.load_average()}
            options = {"tls": certificates} if attack.tls else {}
            try:
                with launchers[name](out_dir, **options) as server:
                    record.update(measure(attack, server, seconds))
            except Exception as exc:  # a crashed server is a finding, not a reason to stop
                record["error"] = f"{type(exc).__name__}: {exc}"
            log.info("  %s", record)
            rows.append(record)
    (out_dir / "abuse.json").write_text(json.dumps(rows, indent=2))
    table = _markdown(rows, started, report.load_average())
    (out_dir / "abuse.md").write_text(table + "\n")
    ok = all(row.get("meets_bar") for row in rows if row["server"] == "resound")
    return table, ok


def _mb(value: int | None) -> str:
    return "—" if value is None else f"{value / 1_048_576:.0f}"


def _markdown(rows: list[dict[str, Any]], started: list[float], ended: list[float]) -> str:
    lines = [
        f"Load average (1/5/15 min) at start {started}, at end {ended}.",
        "",
        "| Attack | Server | the attacker saw | RSS before MB | peak MB | after MB |"
        " normal client served | bar (served, peak < 256 MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    what = {attack.name: attack.what for attack in ATTACKS}
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['attack']} | {row['server']} | — | — | — | — | — | "
                         f"**no** ({row['error'][:80]}) |")
            continue
        first = row["failures"][0] if row["failures"] else "never probed"
        served = "yes" if row["served"] else \
            f"**no** ({len(row['failures'])} of {row['probes']}: {first})"
        lines.append(f"| {row['attack']} | {row['server']} | {row['attacker_saw']} | "
                     f"{_mb(row['baseline'])} | "
                     f"{_mb(row['peak'])} | {_mb(row['after'])} | {served} | "
                     f"{'yes' if row['meets_bar'] else '**no**'} |")
    lines.append("")
    lines.extend(f"- **{name}**: {text}" for name, text in what.items())
    return "\n".join(lines)
