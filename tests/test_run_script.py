"""``scripts/run.sh``, run as a developer runs it: it writes the secrets once, the web
(gunicorn), ws and worker processes it starts share those credentials, ports and URLs come from
the environment on every run, seeding again is safe, and ``scripts/run.sh web worker`` beside
``scripts/run.sh ws`` lets the broadcaster be stopped and restarted alone while the worker keeps
the events made meanwhile. ``--help`` and a taken port stop it before it installs anything.

The script runs in this checkout (its setup step checks the installs in ``.venv``), with the
settings file, the database and the ports of the test's own, so a developer's ``.env`` and
database are never touched. Each run is stopped with SIGTERM to its process group.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dotenv import dotenv_values

from tests.clients.webapp_api import ADMIN, ALICE, WebappApi
from tests.pusher_socket import PusherSocket, error
from tests.servers import HOST, Broadcaster, Webapp, free_port, wait_for_http
from tests.waiting import eventually
from tests.webapp.test_integration import http_authorizer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
RUN_SH = ROOT / "scripts" / "run.sh"
START_TIMEOUT = 240.0  # setup.sh checks pip and npm installs before anything starts
STOP_TIMEOUT = 30.0


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def refuses(port: int) -> bool:
    """True when nothing listens on ``port`` any more."""
    try:
        socket.create_connection((HOST, port), timeout=1).close()
    except OSError:
        return True
    return False


def launch(env: dict[str, str], log: Path, *processes: str) -> subprocess.Popen:
    """``scripts/run.sh [processes...]`` in a session of its own, its output appended to log."""
    with log.open("ab") as output:
        return subprocess.Popen(["bash", str(RUN_SH), *processes], cwd=ROOT, env=env,
                                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


def serving(proc: subprocess.Popen, log: Path, *urls: str) -> None:
    """Wait until each of ``urls`` answers."""
    try:
        for url in urls:
            wait_for_http(url, START_TIMEOUT, proc)
    except (RuntimeError, TimeoutError) as failed:
        raise AssertionError(f"{failed}; run.sh said:\n{tail(log)}") from None


@contextmanager
def run_sh(env: dict[str, str], log: Path, web: Webapp, ws_port: int) -> Iterator[None]:
    """``scripts/run.sh`` until the web page and the ws ``/up`` answer; stopped on exit."""
    proc = launch(env, log)
    try:
        serving(proc, log, f"{web.url}/login", f"http://{HOST}:{ws_port}/up")
        yield
    finally:
        stop(proc)
    eventually(lambda: refuses(web.port) and refuses(ws_port), STOP_TIMEOUT,
               "web and ws stopping with run.sh")


def children_of(pid: int) -> list[int]:
    children_file = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children_file.read_text().split()] \
        if children_file.exists() else []


def stop(proc: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    """``signum`` to run.sh's process group (SIGINT: Ctrl-C in its terminal): honcho (run.sh
    execs it) stops its processes.

    Should honcho hang, it and its children (each a process group of its own) get SIGKILL.
    """
    if proc.poll() is not None:
        return  # run.sh failed before honcho started anything
    children = children_of(proc.pid)
    os.killpg(proc.pid, signum)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        for group in (proc.pid, *children):
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()


def everything(api: WebappApi) -> tuple[list[dict], int]:
    """Every order (as the admin sees them) and the number of products."""
    token, _ = api.login(ADMIN)
    return (api.request("GET", "/api/orders", token)["orders"],
            len(api.request("GET", "/api/products", token)["products"]))


SECRETS = {"REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET", "SECRET_KEY"}


@pytest.mark.timeout(2 * START_TIMEOUT + 120)
def test_run_sh_keeps_only_secrets_and_web_ws_and_worker_share_them_on_any_ports(tmp_path: Path):
    settings = tmp_path / "resound.env"
    web, ws_port = Webapp(port=free_port(), env={}), free_port()
    env = dict(
        os.environ, RESOUND_ENV_FILE=str(settings), REVERB_PORT=str(ws_port),
        WEB_PORT=str(web.port), DATABASE_URL=f"sqlite:///{tmp_path / 'resound.sqlite3'}",
        OUTBOX_DELIVER_ON_COMMIT="0",  # so only the worker publishes: its credentials count
        FLASK_SKIP_DOTENV="1",
    )
    api, log = WebappApi(web.url), tmp_path / "run.log"

    with run_sh(env, log, web, ws_port):
        with urllib.request.urlopen(f"{web.url}/login") as page:
            assert page.headers["Server"].startswith("gunicorn"), page.headers["Server"]
        said = log.read_text(errors="replace")
        assert "Using worker: gthread" in said and said.count("Booting worker with pid") > 1, said
        written = settings.read_text()
        values = dotenv_values(settings)
        assert set(values) == SECRETS, written  # ports and URLs are the environment's
        ws = Broadcaster(port=ws_port, env={}, app_id=values["REVERB_APP_ID"],
                         key=values["REVERB_APP_KEY"], secret=values["REVERB_APP_SECRET"])
        # ws serves the written app and only that one (4001: unknown app key)
        stranger = PusherSocket(ws.ws_url.replace(ws.key, "not-the-written-key"))
        assert error(stranger.greeting)[0] == 4001
        stranger.close()
        alice_socket = PusherSocket.to(ws)
        # web signs subscriptions with the secret ws checks them with
        alice_token, alice = api.login(ALICE)
        channel = f"private-user.{alice['id']}.orders"
        outcome = alice_socket.subscribe_via(channel, http_authorizer(web, alice_token))
        assert outcome["event"] == "pusher_internal:subscription_succeeded", outcome
        # the worker publishes with the credentials ws knows
        orders, products = everything(api)
        pending = next(o for o in orders if o["user"]["id"] == alice["id"]
                       and o["status"] == "pending")
        api.transition(api.login(ADMIN)[0], pending["id"], "paid")
        event = alice_socket.next_event(timeout=30)
        alice_socket.close()
        assert event is not None, f"the worker delivered nothing; run.sh said:\n{tail(log)}"
        assert (event["event"], json.loads(event["data"])["order_id"]) == (
            "order.status.updated", pending["id"])
        # the demo keeps history for the order channels, so pages catch up after a reconnect
        assert isinstance(event["serial"], int) and event["epoch"], event

    # A second run on other ports (the first one's could be taken now): everything follows.
    web, ws_port = Webapp(port=free_port(), env={}), free_port()
    env.update(WEB_PORT=str(web.port), REVERB_PORT=str(ws_port))
    api, started_at = WebappApi(web.url), log.stat().st_size
    with run_sh(env, log, web, ws_port):
        assert settings.read_text() == written
        again, products_again = everything(api)
        # Seeding again added nothing and reset nothing.
        assert products_again == products
        assert [o["id"] for o in again] == [o["id"] for o in orders]
        assert next(o for o in again if o["id"] == pending["id"])["status"] == "paid"
        # ws sends its webhooks to web's new port: Alice's page makes her "online now"
        ws = Broadcaster(port=ws_port, env={}, app_id=values["REVERB_APP_ID"],
                         key=values["REVERB_APP_KEY"], secret=values["REVERB_APP_SECRET"])
        alice_socket = PusherSocket.to(ws)
        alice_token, _ = api.login(ALICE)
        outcome = alice_socket.subscribe_via(channel, http_authorizer(web, alice_token))
        assert outcome["event"] == "pusher_internal:subscription_succeeded", outcome
        admin_token, _ = api.login(ADMIN)
        eventually(lambda: alice["id"] in {user["id"] for user in api.request(
            "GET", "/api/activity", admin_token)["online"]}, 30, "Alice online now")
        alice_socket.close()
        # a warm start installs nothing, so pip and setuptools have nothing to say
        warm = log.read_bytes()[started_at:].decode(errors="replace")
        assert not re.search(r"\bpip\b|setuptools", warm, re.IGNORECASE), warm[:4000]


def bare_checkout(tmp_path: Path) -> Path:
    """A folder with run.sh and the Procfile and nothing else: a run.sh that tried to install
    anything would fail there (it has no scripts/setup.sh)."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "run.sh").write_bytes(RUN_SH.read_bytes())
    (tmp_path / "Procfile").write_bytes((ROOT / "Procfile").read_bytes())
    return tmp_path / "scripts" / "run.sh"


def test_run_sh_help_prints_its_usage_at_once_and_installs_nothing(tmp_path: Path):
    env = dict(os.environ, RESOUND_ENV_FILE=str(tmp_path / "resound.env"))
    done = subprocess.run(["bash", str(bare_checkout(tmp_path)), "--help"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stderr) == (0, ""), done
    for word in ("WEB_PORT", "REVERB_PORT", "WEB_CONCURRENCY", "RESOUND_APP_WEBHOOKS",
                 "DATABASE_URL", "RESOUND_ENV_FILE", "Ctrl-C"):
        assert word in done.stdout, done.stdout
    for process in ("web", "ws", "worker"):
        assert re.search(rf"^  {process} +\S", done.stdout, re.MULTILINE), done.stdout
    assert not (tmp_path / "resound.env").exists()


@pytest.mark.parametrize("taken", ["WEB_PORT", "REVERB_PORT"])
def test_a_taken_port_stops_run_sh_first_with_one_line_naming_it(tmp_path: Path, taken: str):
    settings = tmp_path / "resound.env"
    # a settings file as earlier versions wrote it, with the ports and URLs of then
    settings.write_text("REVERB_APP_ID=1\nREVERB_APP_KEY=k\nREVERB_APP_SECRET=s\n"
                        "REVERB_HOST=127.0.0.1\nREVERB_PORT=8080\nREVERB_SCHEME=http\n"
                        "SECRET_KEY=x\nRESOUND_APP_WEBHOOKS='[{\"url\":\"http://127.0.0.1:5000/"
                        "broadcasting/webhooks\",\"event_types\":[\"channel_occupied\"]}]'\n")
    with socket.create_server((HOST, 0)) as holder:
        port = holder.getsockname()[1]
        env = {**os.environ, "RESOUND_ENV_FILE": str(settings), "WEB_PORT": str(free_port()),
               "REVERB_PORT": str(free_port()), taken: str(port)}
        done = subprocess.run(["bash", str(bare_checkout(tmp_path))], env=env,
                              capture_output=True, text=True, timeout=30)
    assert done.returncode == 1, done
    [line] = done.stderr.splitlines()
    assert line.startswith(f"run.sh: port {port} is taken by another program; set {taken} to a "
                           f"free port (e.g. {taken}="), line
    assert set(dotenv_values(settings)) == SECRETS  # what earlier versions added is gone


def descendant(pid: int, *words: str) -> int:
    """The first process under ``pid`` whose command line holds all of ``words``."""
    for child in children_of(pid):
        command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if all(word.encode() in command for word in words):
            return child
        try:
            return descendant(child, *words)
        except LookupError:
            continue
    raise LookupError(f"no process {' '.join(words)} under {pid}")


def attempts(database: Path) -> list[tuple[int, bool]]:
    """(attempts, delivered) of each outbox row, read straight from the SQLite file."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT attempts, delivered_at IS NOT NULL FROM outbox_events ORDER BY id")
        return [(count, bool(done)) for count, done in rows]


@pytest.mark.timeout(3 * START_TIMEOUT + 120)
def test_the_broadcaster_restarts_alone_while_web_and_worker_keep_serving(tmp_path: Path):
    database = tmp_path / "resound.sqlite3"
    web, ws_port = Webapp(port=free_port(), env={}), free_port()
    env = dict(
        os.environ, RESOUND_ENV_FILE=str(tmp_path / "resound.env"), REVERB_PORT=str(ws_port),
        WEB_PORT=str(web.port), DATABASE_URL=f"sqlite:///{database}",
        OUTBOX_DELIVER_ON_COMMIT="0",  # only the worker delivers: it is what keeps the event
        OUTBOX_BACKOFF_MAX="1", FLASK_SKIP_DOTENV="1",
    )
    api, log = WebappApi(web.url), tmp_path / "run.log"
    ws_up = f"http://{HOST}:{ws_port}/up"

    web_and_worker = launch(env, log, "web", "worker")  # one terminal
    ws_run = None
    try:
        serving(web_and_worker, log, f"{web.url}/login")
        ws_run = launch(env, log, "ws")  # another terminal
        serving(ws_run, log, ws_up)
        values = dotenv_values(tmp_path / "resound.env")
        ws = Broadcaster(port=ws_port, env={}, app_id=values["REVERB_APP_ID"],
                         key=values["REVERB_APP_KEY"], secret=values["REVERB_APP_SECRET"])

        stop(ws_run, signal.SIGINT)  # Ctrl-C in the broadcaster's terminal
        eventually(lambda: refuses(ws_port), STOP_TIMEOUT, "ws stopping alone")
        assert web_and_worker.poll() is None, tail(log)
        admin_token, _ = api.login(ADMIN)  # web still serves
        alice_token, alice = api.login(ALICE)
        orders = api.request("GET", "/api/orders", alice_token)["orders"]
        pending = next(o for o in orders if o["status"] == "pending")
        api.transition(admin_token, pending["id"], "paid")
        eventually(lambda: attempts(database)[-1][0] >= 2, STOP_TIMEOUT,
                   "the worker retrying while ws is down")
        assert not attempts(database)[-1][1]

        # Hold the worker between retries so that Alice listens before it delivers.
        worker = descendant(web_and_worker.pid, "webapp", "worker")
        os.kill(worker, signal.SIGSTOP)
        try:
            ws_run = launch(env, log, "ws")  # run again: the broadcaster is back
            serving(ws_run, log, ws_up)
            alice_socket = PusherSocket.to(ws)
            channel = f"private-user.{alice['id']}.orders"
            outcome = alice_socket.subscribe_via(channel, http_authorizer(web, alice_token))
            assert outcome["event"] == "pusher_internal:subscription_succeeded", outcome
        finally:
            os.kill(worker, signal.SIGCONT)
        event = alice_socket.next_event(timeout=30)
        alice_socket.close()
        assert event is not None, f"the worker delivered nothing; run.sh said:\n{tail(log)}"
        data = json.loads(event["data"])
        assert (event["event"], data["order_id"], data["current_status"]) == (
            "order.status.updated", pending["id"], "paid")
        eventually(lambda: attempts(database)[-1][1], STOP_TIMEOUT, "the row marked delivered")
    finally:
        if ws_run is not None:
            stop(ws_run)
        stop(web_and_worker)
    eventually(lambda: refuses(web.port) and refuses(ws_port), STOP_TIMEOUT,
               "web and ws stopping with run.sh")
