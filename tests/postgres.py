"""A throwaway PostgreSQL server for the tests: its own cluster in a temporary folder, on a free
loopback port, stopped and deleted at the end.

The binaries are Debian's (``scripts/setup.sh test`` installs them): ``/usr/lib/postgresql/<version>
/bin``, or whatever ``pg_ctl`` and ``initdb`` are on the PATH. PostgreSQL refuses to run as root,
so as root the cluster belongs to the ``postgres`` system user (Debian's package makes it) and
its commands run through ``runuser``; anyone else runs them as themselves. Authentication is
``trust`` on 127.0.0.1 only, and durability is off (``fsync``): a test database is disposable.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.servers import HOST, free_port

SYSTEM_USER = "postgres"  # who owns the cluster when the tests run as root
SUPERUSER = "postgres"  # the cluster's own superuser
SETTINGS = {
    "listen_addresses": f"'{HOST}'",
    "unix_socket_directories": "''",  # TCP on loopback only
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
MISSING = ("PostgreSQL's {name} was found neither under /usr/lib/postgresql/*/bin nor on the "
           "PATH: run scripts/setup.sh test, which installs Debian's postgresql")


def binary(name: str) -> str:
    """The newest Debian PostgreSQL's ``name`` (initdb, pg_ctl), else the PATH's."""
    debian = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                    key=lambda path: int(Path(path).parts[-3]))
    found = debian[-1] if debian else shutil.which(name)
    if found is None:
        raise RuntimeError(MISSING.format(name=name))
    return found


def _as_owner(command: list[str]) -> list[str]:
    """``command`` run as the cluster's owner: ``postgres`` through runuser when we are root."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise RuntimeError(f"PostgreSQL will not run as root and there is no {SYSTEM_USER!r} "
                           "user: run scripts/setup.sh test") from None
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"  # a PATH without sbin
    return [runuser, "-u", SYSTEM_USER, "--", *command]


@dataclass
class PostgresServer:
    """A running cluster; :meth:`create_database` makes databases, :meth:`url` names them."""

    port: int = field(default_factory=free_port)
    folder: Path | None = None
    _names: itertools.count = field(default_factory=lambda: itertools.count(1))
    _maker: ThreadPoolExecutor | None = None  # makes the databases, one at a time
    _prepared: dict[str | None, Future[str]] = field(default_factory=dict)  # by template

    @property
    def data(self) -> Path:
        assert self.folder is not None, "start() the server first"
        return self.folder / "data"

    def start(self) -> PostgresServer:
        self.folder = Path(tempfile.mkdtemp(prefix="resound-postgres-"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        self._run(binary("initdb"), "--pgdata", str(self.data), "--username", SUPERUSER,
                  "--auth", "trust", "--encoding", "UTF8", "--no-locale", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.port}\n")
            conf.writelines(f"{key} = {value}\n" for key, value in SETTINGS.items())
        self._run(binary("pg_ctl"), "start", "--pgdata", str(self.data), "--wait",
                  "--timeout", "60", "--log", str(self.folder / "server.log"))
        self._maker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgres-databases")
        return self

    def stop(self) -> None:
        if self._maker is not None:
            self._maker.shutdown(wait=True, cancel_futures=True)
            self._maker, self._prepared = None, {}
        if self.folder is None:
            return
        if (self.data / "postmaster.pid").exists():
            self._run(binary("pg_ctl"), "stop", "--pgdata", str(self.data), "--mode", "immediate",
                      "--wait")
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def _run(self, *command: str) -> None:
        done = subprocess.run(_as_owner(list(command)), capture_output=True, text=True)
        if done.returncode != 0:
            log = self.folder / "server.log" if self.folder else None
            said = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}{said}")

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` (psycopg 3)."""
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement (CREATE/DROP DATABASE) outside a transaction."""
        with psycopg.connect(host=HOST, port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(sql)

    def create_database(self, template: str | None = None) -> str:
        """A new database, empty or a copy of ``template``; its name. The next one of the same
        kind is made meanwhile in a thread (about 0.5 s each), so a test rarely waits for one:
        a template must not change once it has been copied."""
        assert self._maker is not None, "start() the server first"
        pending = self._prepared.pop(template, None) or self._maker.submit(self._create, template)
        name = pending.result()
        self._prepared[template] = self._maker.submit(self._create, template)
        return name

    def _create(self, template: str | None) -> str:
        """Create the database now. The copy copies files (``STRATEGY FILE_COPY``, PostgreSQL
        15+), which without fsync beats logging them."""
        name = f"t{next(self._names)}"
        copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        self.admin(f'CREATE DATABASE "{name}"{copy}')
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing what is still connected to it (a server process under test)."""
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
