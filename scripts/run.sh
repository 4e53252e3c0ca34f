#!/usr/bin/env bash
# Run Resound: web (gunicorn), ws (the broadcaster) and worker (the outbox worker), the
# Procfile's processes, with honcho. `scripts/run.sh --help` says how; it installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
procfile_processes=$(sed -n 's/^\([A-Za-z0-9_-]*\):.*/\1/p' Procfile | paste -sd ' ')

usage() {
    cat <<EOF
usage: scripts/run.sh [PROCESS ...]

Installs what is missing (scripts/setup.sh; a warm start installs nothing), applies the
database migrations, seeds the demo data, and runs the Procfile's processes with honcho:
  web      the order desk under gunicorn, on 127.0.0.1:WEB_PORT
  ws       the broadcaster (WebSockets and the Pusher HTTP API), on 127.0.0.1:REVERB_PORT
  worker   the outbox worker: delivers order events to ws, retrying while it is down
Name processes to run only those (e.g. 'scripts/run.sh web worker' in one terminal and
'scripts/run.sh ws' in another, to stop and restart the broadcaster alone). Ctrl-C stops them.

Read from the environment on every run (nothing here is remembered between runs):
  WEB_PORT              web's port (default 5000)
  REVERB_PORT           ws's port (default 8080)
  WEB_CONCURRENCY       gunicorn workers of web (default 3)
  REVERB_HOST           where web and worker reach ws (default 127.0.0.1)
  RESOUND_APP_WEBHOOKS  ws's webhooks (default: to web's /broadcasting/webhooks on WEB_PORT,
                        which "Online now" needs)
  RESOUND_APP_HISTORY   history for the order channels (default: the last 100 events, 1 h)
  DATABASE_URL          the webapp's database (default: SQLite in instance/)
  RESOUND_ENV_FILE      the settings file (default .env)

The settings file keeps only the secrets, made on the first run: REVERB_APP_ID,
REVERB_APP_KEY, REVERB_APP_SECRET (shared by the three processes) and SECRET_KEY. Settings
you add to it apply too; the environment wins over it.
EOF
}

fail() {
    echo "run.sh: $*" >&2
    exit 1
}

for argument in "$@"; do
    case $argument in
        -h|--help) usage; exit 0 ;;
        -*) fail "unknown option $argument; see scripts/run.sh --help" ;;
    esac
    [[ " $procfile_processes " == *" $argument "* ]] \
        || fail "no process named $argument; the Procfile has: $procfile_processes"
done

env_file=${RESOUND_ENV_FILE:-.env}
if [ ! -f "$env_file" ]; then
    # The secrets the three processes share; honcho gets them through this script's environment.
    python3 - > "$env_file" <<'PY'
import secrets
print(f"REVERB_APP_ID={secrets.randbelow(900000) + 100000}")
print(f"REVERB_APP_KEY={secrets.token_hex(10)}")
print(f"REVERB_APP_SECRET={secrets.token_hex(20)}")
print(f"SECRET_KEY={secrets.token_hex(32)}")
PY
fi
# Earlier versions of this script wrote ports and URLs into the file, where they outlived the
# environment that chose them; they are read from the environment now.
derived='^(REVERB_HOST|REVERB_PORT|REVERB_SCHEME|RESOUND_APP_WEBHOOKS|RESOUND_APP_HISTORY)='
if grep -Eq "$derived" "$env_file"; then
    grep -Ev "$derived" "$env_file" > "$env_file.new" || true
    mv "$env_file.new" "$env_file"
    echo "run.sh: $env_file now keeps only the secrets; ports and URLs come from the environment"
fi
# The file's settings, but for those the environment sets (as python-dotenv and Flask read it).
while IFS= read -r line || [ -n "$line" ]; do
    line=${line#export }
    [[ $line =~ ^([A-Za-z_][A-Za-z0-9_]*)= ]] || continue
    [ -n "${!BASH_REMATCH[1]+set}" ] || eval "export $line"
done < "$env_file"

export WEB_PORT=${WEB_PORT:-5000} REVERB_PORT=${REVERB_PORT:-8080}
export REVERB_HOST=${REVERB_HOST:-127.0.0.1} REVERB_SCHEME=${REVERB_SCHEME:-http}
# ws's webhooks go to web's /broadcasting/webhooks ("Online now", "viewing": webapp/README.md)
export RESOUND_APP_WEBHOOKS=${RESOUND_APP_WEBHOOKS:-"[{\"url\":\"http://127.0.0.1:$WEB_PORT/broadcasting/webhooks\",\"event_types\":[\"channel_occupied\",\"channel_vacated\",\"member_added\",\"member_removed\"]}]"}
# The order channels keep their last 100 events for an hour, so the pages catch up after a
# reconnect (@resound/resume) instead of reloading.
export RESOUND_APP_HISTORY=${RESOUND_APP_HISTORY:-'[{"channels":"private-user.*.orders","limit":100,"ttl":3600},{"channels":"private-admin.orders","limit":100,"ttl":3600}]'}

# Both ports, before anything starts: a taken one stops the run with a line saying what to set.
checks=()
for process in ${*:-$procfile_processes}; do
    case $process in
        web) checks+=("WEB_PORT=$WEB_PORT") ;;
        ws) checks+=("REVERB_PORT=$REVERB_PORT") ;;
    esac
done
[ "$WEB_PORT" != "$REVERB_PORT" ] || [ ${#checks[@]} -lt 2 ] \
    || fail "WEB_PORT and REVERB_PORT are both $WEB_PORT; give them different ports"
[ ${#checks[@]} -eq 0 ] || python3 - "${checks[@]}" <<'PY' || exit 1
import socket
import sys

def taken(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False

failed = False
for check in sys.argv[1:]:
    name, _, value = check.partition("=")
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        print(f"run.sh: {name} is {value!r}; set it to a port number from 1 to 65535",
              file=sys.stderr)
        failed = True
    elif taken(int(value)):
        free = next((p for p in range(int(value) + 1, min(int(value) + 100, 65536))
                     if not taken(p)), None)
        hint = f" (e.g. {name}={free} scripts/run.sh)" if free else ""
        print(f"run.sh: port {value} is taken by another program; set {name} to a free "
              f"port{hint}", file=sys.stderr)
        failed = True
sys.exit(1 if failed else 0)
PY

scripts/setup.sh
export PATH="$PWD/.tools/node/node_modules/.bin:$PATH"  # Node 20, where setup had to add it
# The database is web's and worker's: a run of ws alone leaves it to the run that has them.
uses_database=yes
if [ $# -gt 0 ]; then
    uses_database=no
    for process in "$@"; do [ "$process" = ws ] || uses_database=yes; done
fi
[ "$uses_database" = no ] || .venv/bin/flask --app webapp seed
# Everything is in this script's environment: an empty env file keeps honcho from reading
# .env, whose values would win over the environment's.
exec .venv/bin/honcho start -e /dev/null "$@"
