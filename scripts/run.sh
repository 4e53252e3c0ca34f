#!/usr/bin/env bash
# Install everything, seed the demo data, and run web + ws + worker (the Procfile) with honcho.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.tools/node/node_modules/.bin:$PATH"  # Node 20, where setup had to add it
if [ ! -f .env ]; then
    # Shared credentials for the three processes; honcho loads .env into each of them.
    .venv/bin/python - > .env <<'PY'
import secrets
print(f"REVERB_APP_ID={secrets.randbelow(900000) + 100000}")
print(f"REVERB_APP_KEY={secrets.token_hex(10)}")
print(f"REVERB_APP_SECRET={secrets.token_hex(20)}")
print("REVERB_HOST=127.0.0.1")
print("REVERB_PORT=8080")
print("REVERB_SCHEME=http")
print(f"SECRET_KEY={secrets.token_hex(32)}")
PY
fi
set -a; . ./.env; set +a
.venv/bin/flask --app webapp seed
exec .venv/bin/honcho start
