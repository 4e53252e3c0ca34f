"""pytest's end of the browser scenarios (js/*.mjs on js/browser.mjs): run one in Node against
Debian's Chromium, and return its report once it has passed, logged no JavaScript error and
had no serious or critical axe-core violation on the pages it took screenshots of."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from tests.clients.driver import ROOT
from tests.clients.webapp_api import PASSWORD

JS = ROOT / "tests" / "clients" / "js"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
SCENARIO_TIMEOUT = 90  # seconds a scenario may take, as a whole


def run_scenario(node: str, chromium: str, script: str, **inputs: str) -> dict[str, Any]:
    """Run ``js/<script>`` with ``inputs`` (and the demo password) in its environment."""
    env = dict(os.environ, PASSWORD=PASSWORD, SCREENSHOT_DIR=str(SCREENSHOTS),
               CHROMIUM=chromium, **inputs)
    run = subprocess.run([node, str(JS / script)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=SCENARIO_TIMEOUT)
    assert run.returncode == 0, f"browser scenario failed:\n{run.stderr[-4000:]}"
    return checked(json.loads(run.stdout))


def checked(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` once it has no JavaScript error and no blocking axe-core violation."""
    assert report["errors"] == [], json.dumps(report["errors"], indent=1)
    assert report["accessibility"] == [], json.dumps(report["accessibility"], indent=1)
    return report


def run_scenario_with_steps(
    node: str, chromium: str, script: str, steps: Mapping[str, Callable[[], None]],
    **inputs: str,
) -> dict[str, Any]:
    """:func:`run_scenario` for a scenario that has the test act midway: each
    ``await ask(name)`` of browser.mjs prints ``{"ask": name}``, and waits until
    ``steps[name]()`` has run here and the answer ``done`` has come back."""
    env = dict(os.environ, PASSWORD=PASSWORD, SCREENSHOT_DIR=str(SCREENSHOTS),
               CHROMIUM=chromium, **inputs)
    with tempfile.TemporaryFile() as stderr, subprocess.Popen(
            [node, str(JS / script)], cwd=ROOT, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=stderr, text=True) as run:
        try:
            lines = iter(run.stdout.readline, "")
            message = json.loads(next(lines, "null"))
            while isinstance(message, dict) and set(message) == {"ask"}:
                steps[message["ask"]]()
                run.stdin.write("done\n")
                run.stdin.flush()
                message = json.loads(next(lines, "null"))
            run.stdin.close()
            returncode = run.wait(timeout=SCENARIO_TIMEOUT)
        finally:
            if run.poll() is None:
                run.kill()
        stderr.seek(0)
        assert returncode == 0 and message, (
            f"browser scenario failed:\n{stderr.read().decode(errors='replace')[-4000:]}")
    return checked(message)


def screenshot_names(*names: str) -> list[str]:
    """The files ``session.shoot`` writes for ``names``: desktop width, then 390 px."""
    return [f"{name}{suffix}.png" for name in names for suffix in ("", "-390")]
