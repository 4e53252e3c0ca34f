"""Drive the Node load generator (loadgen.mjs) against one server and sample the server around it.

The generator announces its phases on stdout; at ``start`` and ``end`` this side reads the
server's CPU time (and, apart, its redis-server's), and at ``hold`` (idle connections) it
measures the server's RSS, then lets the generator close its connections.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .servers import APP_ID, APP_KEY, APP_SECRET, RunningServer

LOADGEN = Path(__file__).with_name("loadgen.mjs")
SETTLE_SECONDS = 2.0  # let the server finish allocating before RSS is read

log = logging.getLogger("bench")


class LoadgenError(RuntimeError):
    """The load generator failed; the message carries its stderr."""


def run(server: RunningServer, scenario: str, params: dict[str, Any], timeout: float,
        on_phase: Callable[[str], None] | None = None) -> dict[str, Any]:
    """One load-generator run; returns its result plus the server's figures.

    ``on_phase`` is told "start" and "end" as the measured window opens and closes.
    """
    spec = {"scenario": scenario, "wsUrls": server.ws_urls, "httpUrl": server.http_url,
            "appId": APP_ID, "key": APP_KEY, "secret": APP_SECRET,
            "watchdogSeconds": timeout, **params}
    figures: dict[str, Any] = {"server_rss_start_bytes": server.rss_bytes()}
    log.debug("load generator: %s", json.dumps(spec))
    proc = subprocess.Popen(["node", str(LOADGEN), json.dumps(spec)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        result = _follow(proc, server, figures, on_phase or (lambda phase: None))
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0 or result is None:
        raise LoadgenError(f"{scenario} on {server.name}: load generator exited with "
                           f"{proc.returncode}: {_reason(proc.stderr.read())}")
    return {**result, **figures}


def _reason(stderr: str) -> str:
    """The generator's own "loadgen: ..." line, else the end of whatever it printed."""
    lines = [line for line in stderr.splitlines() if line.startswith("loadgen: ")]
    return lines[-1].removeprefix("loadgen: ") if lines else stderr.strip()[-500:]


def _follow(proc: subprocess.Popen, server: RunningServer, figures: dict[str, Any],
            on_phase: Callable[[str], None]) -> dict[str, Any] | None:
    marks: dict[str, tuple[float, float, float | None]] = {}
    for line in proc.stdout:
        message = json.loads(line)
        log.debug("load generator says %s", line.strip()[:500])
        phase = message.get("phase")
        if phase in ("start", "end"):
            marks[phase] = (time.monotonic(), server.cpu_seconds(), server.redis_cpu_seconds())
            on_phase(phase)
            if phase == "end":
                figures["server_rss_end_bytes"] = server.rss_bytes()
        elif phase == "hold":
            time.sleep(SETTLE_SECONDS)
            figures["server_rss_loaded_bytes"] = server.rss_bytes()
            proc.stdin.write("done\n")
            proc.stdin.flush()
        elif "result" in message:
            if "start" in marks and "end" in marks:
                wall = marks["end"][0] - marks["start"][0]
                cpu = marks["end"][1] - marks["start"][1]
                figures["server_cpu_seconds"] = cpu
                figures["server_cpu_pct"] = 100 * cpu / wall if wall > 0 else None
                if marks["start"][2] is not None:
                    figures["redis_cpu_seconds"] = marks["end"][2] - marks["start"][2]
            return message["result"]
    return None
