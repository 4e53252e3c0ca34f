"""Profile Resound under a scenario: py-spy samples the server during the measured window only.

The profile is a separate run from the timed rounds (sampling costs CPU on a small machine). It
samples native frames too, so time in system calls shows as such, keeps py-spy's raw collapsed
stacks, and summarizes the functions with the most samples: where the time is spent (self) and
which of the project's functions it is spent under (inclusive). A cluster scenario is profiled on
its cluster setup: py-spy follows the first node's child processes too (``--workers``), and the
other nodes of a several-node setup are not sampled.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from . import loadgen
from .scenarios import BY_NAME
from .servers import CLUSTER_LAUNCHERS, resound

SAMPLE_RATE = 250  # samples per second
TOP = 15
OWN_CODE = ("broadcaster/", "shared/")  # inclusive figures list only the project's functions
REPO = f"{Path(__file__).resolve().parent.parent}/"
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not found:
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    return found


def _short(frame: str) -> str:
    """``function (file)`` with the path cut to the package, without the line number."""
    match = FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", REPO, "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{match['function']}"


def summarize(raw: str, own_code: tuple[str, ...] = OWN_CODE) -> dict[str, Any]:
    """Top functions by self and inclusive samples from py-spy's ``--format raw`` output; the
    inclusive figures list only functions under ``own_code``."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    libraries: Counter[str] = Counter()  # self samples by package, C source or shared object
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";") if frame]
        total += count
        own[frames[-1]] += count
        libraries[frames[-1].split("/", 1)[0].split(":", 1)[0]] += count
        for frame in set(frames):
            if frame.startswith(own_code):
                under[frame] += count

    def top(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"function": name, "samples": n, "pct": 100 * n / total}
                for name, n in counter.most_common(TOP)] if total else []

    return {"samples": total, "self": top(own), "inclusive": top(under),
            "libraries": top(libraries)[:8]}


def profile(name: str, quick: bool, out_dir: Path, timeout: float) -> dict[str, Any]:
    """Run scenario ``name`` on Resound with py-spy attached during the measured window."""
    scenario = BY_NAME[name]
    raw_path = out_dir / f"{name}-profile.raw"
    py_spy = _py_spy()
    setup = scenario.sides[0] if scenario.cluster else "resound"
    params = scenario.params(setup, quick)
    launcher = CLUSTER_LAUNCHERS[setup] if scenario.cluster else resound
    with launcher(out_dir) as server:
        sampler: list[subprocess.Popen] = []

        def on_phase(phase: str) -> None:
            if phase == "start":
                sampler.append(subprocess.Popen(
                    [py_spy, "record", "--pid", str(server.pid), "--rate", str(SAMPLE_RATE),
                     "--native", "--subprocesses", "--format", "raw",
                     "--output", str(raw_path)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            elif sampler:
                _stop(sampler[0])

        try:
            result = loadgen.run(server, scenario.loadgen, params, timeout, on_phase)
        finally:
            for process in sampler:
                _stop(process)
    summary = summarize(raw_path.read_text() if raw_path.exists() else "")
    figures = {figure.label: figure.compute(result) for figure in scenario.figures
               if figure.ratio}
    return {"scenario": name, "setup": setup, "raw": str(raw_path), "figures": figures,
            "params": params, **summary}


def sample(pids: dict[str, int], out_dir: Path) -> list[subprocess.Popen]:
    """py-spy recording each named process and its children, into ``out_dir/NAME.raw``, until
    :func:`stop_all`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([_py_spy(), "record", "--pid", str(pid), "--rate", str(SAMPLE_RATE),
                              "--subprocesses", "--format", "raw",
                              "--output", str(out_dir / f"{name}.raw")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, pid in pids.items()]


def stop_all(samplers: list[subprocess.Popen]) -> None:
    for sampler in samplers:
        _stop(sampler)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def markdown(profile: dict[str, Any]) -> str:
    """A scenario's profile: its figures with the sampler on, then :func:`top_table`."""
    figures = ", ".join(f"{label} {value:,.4g}" for label, value in profile["figures"].items()
                        if value is not None)
    lines = [
        f"Resound {profile['scenario']} profile ({profile.get('setup', 'resound')}; py-spy, "
        f"{profile['samples']} samples while busy; "
        f"with the sampler attached: {figures})",
        "",
        top_table(profile),
    ]
    return "\n".join(lines)


def top_table(profile: dict[str, Any]) -> str:
    """Self time by library, and the top functions by self and inclusive samples."""
    lines = [
        f"{profile['samples']} samples. Self time by library: " + ", ".join(
            f"{lib['function']} {lib['pct']:.0f} %" for lib in profile["libraries"]),
        "",
        "| Self % | Function | | Inclusive % | Function |",
        "|---:|---|---|---:|---|",
    ]
    for own, under in zip(profile["self"], profile["inclusive"], strict=False):
        lines.append(f"| {own['pct']:.1f} | `{own['function']}` | | "
                     f"{under['pct']:.1f} | `{under['function']}` |")
    return "\n".join(lines)
