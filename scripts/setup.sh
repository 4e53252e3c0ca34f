#!/usr/bin/env bash
# Install what Resound needs on a fresh Debian machine with Python 3.11:
#   scripts/setup.sh          Debian packages, .venv with the project, npm packages
#   scripts/setup.sh test     the same, plus the test extras, redis-server, chromium, nginx and
#                             PostgreSQL (the webapp tests start clusters of their own with it)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

packages=()
python3 -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3-venv)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
if [ "$mode" = test ]; then
    command -v redis-server >/dev/null || packages+=(redis-server)
    # tests/redis_cluster.py joins its nodes with redis-cli --cluster create; the Sentinel
    # fixture runs redis-server --sentinel (no redis-sentinel package needed)
    command -v redis-cli >/dev/null || packages+=(redis-tools)
    command -v chromium >/dev/null || packages+=(chromium)
    # tests/operations/test_nginx.py runs the README's reverse-proxy recipe
    PATH="$PATH:/usr/sbin" command -v nginx >/dev/null || packages+=(nginx)
    # tests/postgres.py runs initdb and pg_ctl from /usr/lib/postgresql/<version>/bin
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null \
        || packages+=(postgresql)
fi
[ ${#packages[@]} -eq 0 ] || apt_install "${packages[@]}"
# PostgreSQL refuses to run as root: as root, the tests run it as the system user "postgres"
# (Debian's package makes it; made here when the binaries came another way).
if [ "$mode" = test ] && [ "$(id -u)" -eq 0 ] && ! id -u postgres >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
fi

# laravel-echo 2 and playwright-core want Node 20 or newer; Debian 12 ships 18. The npm registry's
# `node` package carries an official Node 20 build: install it beside the project when needed.
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ] && [ ! -x .tools/node/node_modules/.bin/node ]; then
    echo "setup: system Node is $(node --version); installing Node 20 into .tools/node"
    npm install --no-audit --no-fund --loglevel=error --prefix .tools/node node@20
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
extras=""
[ "$mode" = test ] && extras="[test,bench]"
# pip runs only when pyproject.toml changed since it last installed the project with these
# extras (or more): a warm start skips it, its 6 s and its output. The stamp lives in .venv, so
# a new venv installs again.
stamp=.venv/resound-installed
hash=$(sha256sum pyproject.toml | cut -d' ' -f1)
installed=$(cat "$stamp" 2>/dev/null || true)
if [ "$installed" != "$hash [test,bench]" ] && [ "$installed" != "$hash $extras" ]; then
    rm -f "$stamp"
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras"
    echo "$hash $extras" > "$stamp"
fi

# npm writes node_modules/.package-lock.json last: without it the folder is missing or partial.
if [ ! -f node_modules/.package-lock.json ] || [ package.json -nt node_modules ] || \
   { [ -f package-lock.json ] && [ package-lock.json -nt node_modules ]; }; then
    if [ -f package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error
    else
        npm install --no-audit --no-fund --loglevel=error
    fi
    touch node_modules
fi
