#!/usr/bin/env bash
# Install everything the tests need, then run the whole suite (lint, Python, Node, browser).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export PATH="$PWD/.tools/node/node_modules/.bin:$PATH"  # Node 20, where setup had to add it
export RESOUND_REQUIRE_CLIENTS=1  # a missing node, npm package or chromium fails, never skips
.venv/bin/ruff check .
# In parallel (pytest-xdist): the tests mostly wait for the servers they start, so 5 workers keep
# 2 cores busy (with 4, the cores were idle 15 % of a run: tests/README.md); tests marked
# xdist_group("name") share one worker. The 20 slowest tests are listed at the end. Later options
# win: scripts/test.sh -n 0 runs in one process.
exec .venv/bin/python -m pytest -n 5 --dist loadgroup --durations=20 "$@"
