#!/usr/bin/env bash
# Install everything, apply the migrations and seed the demo data, and run web (gunicorn) + ws +
# worker (the Procfile) with honcho.
#   scripts/run.sh               all three
#   scripts/run.sh web worker    only those (names go to `honcho start`); `scripts/run.sh ws` in
#                                another terminal then runs the broadcaster, which Ctrl-C stops
#                                alone and re-running starts again
# RESOUND_ENV_FILE (default .env): the shared settings, written on the first run only (with
# REVERB_PORT, default 8080, if set), plus RESOUND_APP_WEBHOOKS (the webapp's webhook URL) and
# RESOUND_APP_HISTORY (history for the order channels) when missing. WEB_PORT (default 5000) is
# the web process's port; WEB_CONCURRENCY (default 3) its number of gunicorn workers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.tools/node/node_modules/.bin:$PATH"  # Node 20, where setup had to add it
env_file=${RESOUND_ENV_FILE:-.env}
if [ ! -f "$env_file" ]; then
    # Shared credentials for the three processes; honcho loads this file into each of them.
    .venv/bin/python - > "$env_file" <<'PY'
import os
import secrets
print(f"REVERB_APP_ID={secrets.randbelow(900000) + 100000}")
print(f"REVERB_APP_KEY={secrets.token_hex(10)}")
print(f"REVERB_APP_SECRET={secrets.token_hex(20)}")
print("REVERB_HOST=127.0.0.1")
print(f"REVERB_PORT={os.environ.get('REVERB_PORT', '8080')}")
print("REVERB_SCHEME=http")
print(f"SECRET_KEY={secrets.token_hex(32)}")
PY
fi
if ! grep -q '^RESOUND_APP_WEBHOOKS=' "$env_file"; then
    # The broadcaster's webhooks go to the webapp's /broadcasting/webhooks (webapp/README.md);
    # added to a settings file written before, too.
    WEB_PORT=${WEB_PORT:-5000} .venv/bin/python - >> "$env_file" <<'PY'
import json
import os
hooks = [{"url": f"http://127.0.0.1:{os.environ['WEB_PORT']}/broadcasting/webhooks",
          "event_types": ["channel_occupied", "channel_vacated", "member_added", "member_removed"]}]
print(f"RESOUND_APP_WEBHOOKS='{json.dumps(hooks, separators=(',', ':'))}'")
PY
fi
if ! grep -q '^RESOUND_APP_HISTORY=' "$env_file"; then
    # The order channels keep their last 100 events for an hour, so the pages catch up after a
    # reconnect (@resound/resume) instead of reloading; added to a settings file written before.
    cat >> "$env_file" <<'ENV'
RESOUND_APP_HISTORY='[{"channels":"private-user.*.orders","limit":100,"ttl":3600},{"channels":"private-admin.orders","limit":100,"ttl":3600}]'
ENV
fi
set -a; . "$(realpath "$env_file")"; set +a
# The database is web's and worker's: a run of ws alone leaves it to the run that has them.
uses_database=yes
if [ $# -gt 0 ]; then
    uses_database=no
    for process in "$@"; do [ "$process" = ws ] || uses_database=yes; done
fi
[ "$uses_database" = no ] || .venv/bin/flask --app webapp seed
exec .venv/bin/honcho start -e "$env_file" "$@"
