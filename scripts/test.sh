#!/usr/bin/env bash
# Install everything the tests need, then run the whole suite (lint, Python, Node, browser).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export PATH="$PWD/.tools/node/node_modules/.bin:$PATH"  # Node 20, where setup had to add it
export RESOUND_REQUIRE_CLIENTS=1  # a missing node, npm package or chromium fails, never skips
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
