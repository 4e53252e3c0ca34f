"""pytest's end of the browser scenarios (js/*.mjs on js/browser.mjs): run one in Node against
Debian's Chromium, and return its report once it has passed, logged no JavaScript error and
had no serious or critical axe-core violation on the pages it took screenshots of."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from tests.clients.driver import ROOT
from tests.clients.webapp_api import PASSWORD

JS = ROOT / "tests" / "clients" / "js"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def run_scenario(node: str, chromium: str, script: str, **inputs: str) -> dict[str, Any]:
    """Run ``js/<script>`` with ``inputs`` (and the demo password) in its environment."""
    env = dict(os.environ, PASSWORD=PASSWORD, SCREENSHOT_DIR=str(SCREENSHOTS),
               CHROMIUM=chromium, **inputs)
    run = subprocess.run([node, str(JS / script)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=90)
    assert run.returncode == 0, f"browser scenario failed:\n{run.stderr[-4000:]}"
    report = json.loads(run.stdout)
    assert report["errors"] == [], json.dumps(report["errors"], indent=1)
    assert report["accessibility"] == [], json.dumps(report["accessibility"], indent=1)
    return report


def screenshot_names(*names: str) -> list[str]:
    """The files ``session.shoot`` writes for ``names``: desktop width, then 390 px."""
    return [f"{name}{suffix}.png" for name in names for suffix in ("", "-390")]
