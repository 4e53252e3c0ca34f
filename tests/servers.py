"""Start real server processes on free loopback ports for the tests.

Every suite (broadcaster, HTTP API, webapp, real clients) uses these, so a server is started the
same way everywhere: as its own process, the way the Procfile starts it.
"""

from __future__ import annotations

import atexit
import itertools
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
APP_ID = "123456"
APP_KEY = "test-key"
APP_SECRET = "test-secret"
# The webapp's SECRET_KEY: made per test run, since a key written in the repository is public.
WEBAPP_SECRET_KEY = secrets.token_hex(32)
# The webapp's PENDING_ORDERS_PER_CUSTOMER in tests not about it, which place many orders.
UNCAPPED = 1_000_000


# Under pytest-xdist each worker (gw0, gw1, ...) hands out ports from a block of its own, below
# Linux's ephemeral range (32768-60999) where bind(0) and outgoing connections take theirs: two
# workers never get the same port, and no client socket takes one between free_port and the bind.
WORKER_PORTS_FIRST = 20_000
WORKER_PORTS_BLOCK = 1_000  # ports per worker; 12 blocks fit below 32768
_worker_ports: Iterator[int] | None = None


def free_port() -> int:
    """A loopback port that nothing listens on now: under xdist from the worker's own block
    (see ``WORKER_PORTS_FIRST``), else the kernel's choice."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            return sock.getsockname()[1]
    global _worker_ports
    if _worker_ports is None:
        first = WORKER_PORTS_FIRST + int(worker[2:]) % 12 * WORKER_PORTS_BLOCK
        start = random.randrange(WORKER_PORTS_BLOCK)  # apart from another session's gw0
        _worker_ports = itertools.cycle([*range(first + start, first + WORKER_PORTS_BLOCK),
                                         *range(first, first + start)])
    for port in itertools.islice(_worker_ports, WORKER_PORTS_BLOCK):
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:  # taken (or in TIME_WAIT): the next one
                continue
            return port
    raise RuntimeError(f"no free port in {worker}'s block of {WORKER_PORTS_BLOCK}")


def wait_for_http(url: str, timeout: float = 45.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing answered {url} within {timeout} s")


def answered(proc: subprocess.Popen, url: str) -> None:
    """Wait for the server ``proc`` to answer ``url``; if it never does, end it (a server that
    failed to start must not outlive the test) and raise."""
    try:
        wait_for_http(url, proc=proc)
    except BaseException:
        terminate(proc)
        raise


# The demo users' passwords in the tests' databases are hashed with one round of PBKDF2, not
# werkzeug's default (scrypt: about 0.3 s of CPU for each hash and for each sign-in's check, which
# was a third of the webapp modules' time). Sign-in runs unchanged: it checks the hash it finds;
# a password set through the app (set_password) gets the default hash.
TEST_PASSWORD_HASH = "pbkdf2:sha256:1"
SQLITE_PREFIX = "sqlite:///"
_sqlite_template: Path | None = None  # this process's seeded SQLite file, copied for each webapp


def seed_for_tests() -> None:
    """In an app context: ``seed_database()`` (what ``flask --app webapp seed`` does), with the
    demo users it adds given :data:`TEST_PASSWORD_HASH` hashes."""
    from sqlalchemy import inspect
    from werkzeug.security import generate_password_hash

    from webapp.extensions import db
    from webapp.orders.models import User
    from webapp.seed import DEMO_PASSWORD, seed_database

    had = set(db.session.scalars(db.select(User.email))) \
        if inspect(db.engine).has_table(User.__tablename__) else set()
    seed_database()
    for user in db.session.scalars(db.select(User).where(User.email.not_in(had))):
        user.password_hash = generate_password_hash(DEMO_PASSWORD, method=TEST_PASSWORD_HASH)
    db.session.commit()


def seed_webapp(env: Mapping[str, str]) -> None:
    """What ``flask --app webapp seed`` does with ``env``, in this process: the same settings
    and data, without a second Flask start-up (about 1 s of CPU) for every webapp a test starts.
    A SQLite file not made yet is a copy of this process's first seeded one."""
    import shutil

    from webapp import config, create_app  # here: only the tests that start a webapp need Flask
    from webapp.extensions import db

    global _sqlite_template
    url = env["DATABASE_URL"]
    target = Path(url.removeprefix(SQLITE_PREFIX)) if url.startswith(SQLITE_PREFIX) else None
    fresh = target is not None and not target.exists()
    if fresh and _sqlite_template is not None:
        shutil.copy(_sqlite_template, target)
        return
    app = create_app(config.load(env, None))
    with app.app_context():
        seed_for_tests()
        db.engine.dispose()
    if fresh and _sqlite_template is None:
        template = Path(tempfile.mkdtemp(prefix="resound-seeded-")) / "seeded.sqlite3"
        shutil.copy(target, template)
        atexit.register(shutil.rmtree, template.parent, True)
        _sqlite_template = template


@dataclass
class Broadcaster:
    """A running ``python -m broadcaster start`` process."""

    port: int
    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    stderr: IO[bytes] | None = None  # where its log goes (default: the test's stderr)

    app_id: str = APP_ID
    key: str = APP_KEY
    secret: str = APP_SECRET

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/app/{self.key}?protocol=7&client=js&version=8.4.0"

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Broadcaster:
        cmd = [sys.executable, "-m", "broadcaster", "start", "--host", HOST,
               "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(cmd, env=self.env, stderr=self.stderr)
        answered(self.proc, f"{self.http_url}/up")
        return self

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None

    def kill(self) -> None:
        """``kill -9``: no graceful stop (which waits for the webhooks still in their window)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None


def start_broadcaster(
    extra_env: Mapping[str, str] | None = None, args: list[str] | None = None,
    port: int | None = None, stderr: IO[bytes] | None = None,
) -> Broadcaster:
    """Start a broadcaster with the test app (``APP_ID``/``APP_KEY``/``APP_SECRET``)."""
    env = dict(os.environ)
    env.update({
        "REVERB_APP_ID": APP_ID,
        "REVERB_APP_KEY": APP_KEY,
        "REVERB_APP_SECRET": APP_SECRET,
    })
    env.update(extra_env or {})
    return Broadcaster(port=port or free_port(), env=env, args=list(args or []),
                       stderr=stderr).start()


@contextmanager
def broadcaster_pair(extra_env: Mapping[str, str]) -> Iterator[tuple[Broadcaster, Broadcaster]]:
    """Two broadcasters with the same settings (e.g. scaling on one Redis), stopped after."""
    first = start_broadcaster(extra_env)
    try:
        second = start_broadcaster(extra_env)
    except Exception:
        first.stop()
        raise
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


@dataclass
class Webapp:
    """A running webapp process, seeded, with its own database: ``flask --app webapp run``, or
    with ``procfile`` the Procfile's ``web`` command (gunicorn) as honcho runs it."""

    port: int
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    procfile: bool = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Webapp:
        seed_webapp(self.env)
        flask = [sys.executable, "-m", "flask", "--app", "webapp"]
        if self.procfile:
            self.proc = subprocess.Popen(["bash", "-c", procfile_command("web")], cwd=ROOT,
                                         env={**self.env, "WEB_PORT": str(self.port)})
        else:
            self.proc = subprocess.Popen(
                [*flask, "run", "--host", HOST, "--port", str(self.port), "--no-reload"],
                env=self.env,
            )
        answered(self.proc, f"{self.url}/login")
        return self

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None


@dataclass
class Worker:
    """A running ``flask --app webapp worker`` process (the outbox dispatcher)."""

    proc: subprocess.Popen

    def wait(self, timeout: float = 30.0) -> int:
        """Its exit status (for ``--once`` runs)."""
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        terminate(self.proc)


def terminate(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM ``proc`` if it runs, and SIGKILL it if it has not ended within ``timeout``."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def procfile_command(process: str) -> str:
    """The Procfile's command line for ``process`` (web, ws, worker), to run from ROOT."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return command.strip()
    raise LookupError(f"the Procfile has no {process!r} process")


def start_webapp(
    reverb_port: int, database: str | os.PathLike[str],
    extra_env: Mapping[str, str] | None = None, port: int | None = None,
    procfile: bool = False,
) -> Webapp:
    """Seed ``database`` (a SQLite file, created if missing, or a database URL such as
    ``Databases.seeded()`` of tests/webapp/conftest.py) and start the webapp on a free port.

    ``reverb_port`` is the broadcaster's port (``Broadcaster.port``); the app signs with the test
    app's ``APP_ID``/``APP_KEY``/``APP_SECRET``. The web process delivers events right after
    each commit; ``extra_env`` overrides any setting (e.g. ``OUTBOX_DELIVER_ON_COMMIT=0`` to
    leave delivery to a worker); ``procfile`` serves it as the Procfile does (gunicorn). Demo
    logins: admin@, alice@, bob@example.com, password ``password``.
    """
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database if isinstance(database, str) and "://" in database
        else f"sqlite:///{os.fspath(database)}",
        "SECRET_KEY": WEBAPP_SECRET_KEY,
        "REVERB_APP_ID": APP_ID,
        "REVERB_APP_KEY": APP_KEY,
        "REVERB_APP_SECRET": APP_SECRET,
        "REVERB_HOST": HOST,
        "REVERB_PORT": str(reverb_port),
        "REVERB_SCHEME": "http",
        "OUTBOX_IDLE_SECONDS": "0.1",
        "OUTBOX_BACKOFF_INITIAL": "0.1",
        "OUTBOX_BACKOFF_MAX": "1.0",
        "PENDING_ORDERS_PER_CUSTOMER": str(UNCAPPED),
        "FLASK_SKIP_DOTENV": "1",  # a developer's .env (scripts/run.sh) must not leak in
    })
    env.update(extra_env or {})
    return Webapp(port=port or free_port(), env=env, procfile=procfile).start()


def start_worker(webapp: Webapp, args: list[str] | None = None) -> Worker:
    """Start the outbox worker with ``webapp``'s database and broadcaster settings.

    ``args`` go to ``flask --app webapp worker``: ``["--once"]`` delivers what is pending and
    exits (status 0 when all went out; see :meth:`Worker.wait`); ``["--debug"]`` logs each event.
    """
    cmd = [sys.executable, "-m", "flask", "--app", "webapp", "worker", *(args or [])]
    return Worker(subprocess.Popen(cmd, env=webapp.env))
