"""Which Redis a URL names, and the clients that reach it: the one place that knows the modes.

Every user of Redis (the broadcaster's bus, state, webhooks and idempotency keys, the webapp)
reads ``REDIS_URL`` with :func:`parse_redis_url` and connects with :func:`async_client` or
:func:`sync_client`, so one URL means the same servers everywhere. The forms are the ones the
``limits`` library (and so Flask-Limiter) reads:

- ``redis://[user:password@]host[:port][/db]``, ``rediss://`` (TLS) and ``unix:///path``: one
  server (mode ``single``), read by redis-py's ``from_url`` as before.
- ``redis+cluster://[user:password@]host:port,host:port,...``: seed nodes of a Redis Cluster
  (mode ``cluster``); the client learns the other nodes and the slot map from them.
- ``redis+sentinel://[user:password@]host:port,host:port,.../master[/db]``: the sentinels watching
  the master named ``master`` (mode ``sentinel``); the client asks them where the master is and
  asks again after a failover. The password is sent to the sentinels and to the master alike, as
  ``limits`` does.

In the multi-host forms every node needs its port, and user and password are percent-decoded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.connection
import redis.sentinel

SINGLE_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEME = "redis+cluster"
SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_PORT = 6379

_FORMS = {
    "single": "redis://[user:password@]host[:port][/db], rediss://... or unix:///path",
    "cluster": f"{CLUSTER_SCHEME}://[user:password@]host:port,host:port,... (seed nodes)",
    "sentinel": f"{SENTINEL_SCHEME}://[user:password@]host:port,host:port,.../master[/db] "
                "(sentinels, then the master's name)",
}


@dataclass(frozen=True, slots=True, repr=False)
class RedisTarget:
    """A parsed ``REDIS_URL``: the mode, where to connect first, and the credentials."""

    mode: str  # "single", "cluster" or "sentinel"
    url: str  # as given
    nodes: tuple[tuple[str, int], ...]  # the server, the seed nodes, or the sentinels
    service: str | None = None  # the master's name (sentinel mode)
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    path: str | None = None  # the socket of a unix:// URL

    @property
    def where(self) -> str:
        """The URL without its password, for logs and errors."""
        return redacted(self.url)

    def __repr__(self) -> str:  # without the password, which logs must never show
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "password"}
        shown["url"] = self.where
        return f"RedisTarget({', '.join(f'{name}={value!r}' for name, value in shown.items())})"


def parse_redis_url(url: str) -> RedisTarget:
    """The target ``url`` names. Raises ValueError with a one-line reason naming the form."""
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower() if sep else ""
    if scheme in SINGLE_SCHEMES:
        return _single(url, scheme)
    if scheme in (CLUSTER_SCHEME, SENTINEL_SCHEME):
        return _multi_host(url, "cluster" if scheme == CLUSTER_SCHEME else "sentinel")
    forms = "; ".join(_FORMS.values())
    raise ValueError(f"a Redis URL must start with redis://, rediss://, unix://, "
                     f"{CLUSTER_SCHEME}:// or {SENTINEL_SCHEME}://, got {redacted(url)!r} "
                     f"(forms: {forms})")


def _single(url: str, scheme: str) -> RedisTarget:
    try:
        options = redis.connection.parse_url(url)
    except ValueError as exc:
        raise ValueError(f"{redacted(url)!r} is not a Redis URL ({exc}); expected "
                         f"{_FORMS['single']}") from None
    parts = urlsplit(url)
    if "db" not in options and parts.path.strip("/") and scheme != "unix":
        raise ValueError(f"the database in {redacted(url)!r} must be a number; expected "
                         f"{_FORMS['single']}")
    db = options.get("db", 0)
    if not isinstance(db, int) or db < 0:
        raise ValueError(f"the database in {redacted(url)!r} must be a number from 0")
    if scheme == "unix":
        if not options.get("path"):
            raise ValueError(f"{redacted(url)!r} names no socket; expected unix:///path")
        nodes: tuple[tuple[str, int], ...] = ()
    else:
        if not options.get("host"):
            raise ValueError(f"{redacted(url)!r} names no host; expected {_FORMS['single']}")
        nodes = ((options["host"], options.get("port", DEFAULT_PORT)),)
    return RedisTarget(mode="single", url=url, nodes=nodes, db=db,
                       username=options.get("username"), password=options.get("password"),
                       tls=scheme == "rediss", path=options.get("path"))


def _multi_host(url: str, mode: str) -> RedisTarget:
    form = _FORMS[mode]
    rest = url.partition("://")[2]
    netloc, slash, path = rest.partition("/")
    if "?" in netloc or "#" in netloc or "?" in path or "#" in path:
        raise ValueError(f"{redacted(url)!r} has ?options, which this form does not take; "
                         f"expected {form}")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon and secret else None
    nodes = tuple(_node(location, url, form) for location in hosts.split(","))
    names = path.rstrip("/").split("/") if slash else []  # a trailing slash changes nothing
    if mode == "cluster":
        if any(names) and names != ["0"]:
            raise ValueError(f"{redacted(url)!r} names a database or path, but a Redis Cluster "
                             f"has only database 0; expected {form}")
        return RedisTarget(mode=mode, url=url, nodes=nodes, username=username,
                           password=password)
    if not names or not names[0]:
        raise ValueError(f"{redacted(url)!r} names no master after the sentinels; expected {form}")
    if len(names) > 2 or (len(names) == 2 and not names[1].isdigit()):
        raise ValueError(f"{redacted(url)!r} has {'/'.join(names)!r} after the sentinels; "
                         f"expected the master's name and an optional database number: {form}")
    db = int(names[1]) if len(names) == 2 else 0
    return RedisTarget(mode=mode, url=url, nodes=nodes, service=unquote(names[0]), db=db,
                       username=username, password=password)


def _node(location: str, url: str, form: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) as a pair; every node of a multi-host URL needs both."""
    try:
        parts = urlsplit(f"//{location.strip()}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise ValueError(f"{redacted(url)!r} has {location.strip()!r} where host:port belongs "
                         f"(every node needs its port, from 1 to 65535); expected {form}")
    return host, port


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``, for logs; any form, several hosts too."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, hosts = rest[:end].rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not at or not colon:
        return url
    return f"{scheme}://{user}:***@{hosts}{rest[end:]}"


def async_client(target: RedisTarget, **options: Any) -> redis.asyncio.Redis | \
        redis.asyncio.RedisCluster:
    """A redis-py asyncio client for ``target``; ``options`` are redis-py connection options
    (``socket_timeout``, ``socket_connect_timeout``, ``max_connections``, ``retry``,
    ``decode_responses``...). ``max_connections`` is per node in cluster mode. Closing the client
    (``aclose``) also closes its connections to the sentinels."""
    if target.mode == "single":
        return redis.asyncio.Redis.from_url(target.url, **options)
    auth = _auth(target)
    if target.mode == "cluster":
        nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in target.nodes]
        return redis.asyncio.RedisCluster(startup_nodes=nodes, **auth, **options)
    sentinel = redis.asyncio.sentinel.Sentinel(
        target.nodes, sentinel_kwargs=_sentinel_options(auth, options), **auth)
    return sentinel.master_for(target.service, redis_class=_AsyncSentinelMaster, db=target.db,
                               **options)


def sync_client(target: RedisTarget, **options: Any) -> redis.Redis | redis.RedisCluster:
    """The synchronous twin of :func:`async_client` (for the webapp); ``close`` it when done."""
    if target.mode == "single":
        return redis.Redis.from_url(target.url, **options)
    auth = _auth(target)
    if target.mode == "cluster":
        nodes = [redis.cluster.ClusterNode(host, port) for host, port in target.nodes]
        return redis.RedisCluster(startup_nodes=nodes, **auth, **options)
    sentinel = redis.sentinel.Sentinel(
        target.nodes, sentinel_kwargs=_sentinel_options(auth, options), **auth)
    return sentinel.master_for(target.service, redis_class=_SyncSentinelMaster, db=target.db,
                               **options)


def limits_storage(target: RedisTarget) -> tuple[str, dict[str, Any]]:
    """The storage URI and options with which the ``limits`` library (so Flask-Limiter) reaches
    ``target`` as our clients do. ``limits`` reads a unix socket only as ``redis+unix://``, takes
    the whole sentinel path as the master's name (``/main/1`` would be ``main1``) and passes the
    multi-host forms' credentials on still percent-encoded: so the database and credentials go
    as options, which it prefers. It also reads a Sentinel master, never a lagging replica."""
    if target.mode == "single":
        scheme, _, rest = target.url.partition("://")
        return (f"redis+unix://{rest}" if scheme.lower() == "unix" else target.url), {}
    hosts = ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                     for host, port in target.nodes)
    if target.mode == "cluster":
        return f"{CLUSTER_SCHEME}://{hosts}", _auth(target)
    return (f"{SENTINEL_SCHEME}://{hosts}/{quote(target.service or '', safe='')}",
            {**_auth(target), "db": target.db, "use_replicas": False})


def _auth(target: RedisTarget) -> dict[str, str]:
    auth = {"username": target.username, "password": target.password}
    return {name: value for name, value in auth.items() if value is not None}


def _sentinel_options(auth: dict[str, str], options: dict[str, Any]) -> dict[str, Any]:
    """Options for the connections to the sentinels: the credentials and the socket options
    (what redis-py takes by default, plus the credentials as ``limits`` sends them)."""
    return {**auth, **{name: value for name, value in options.items()
                       if name.startswith("socket_")}}


class _AsyncSentinelMaster(redis.asyncio.Redis):
    """The master's client, which also closes the sentinels' clients (redis-py leaves them
    open: ``Sentinel`` is not owned by the clients ``master_for`` returns)."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            await self.connection_pool.sentinel_manager.aclose()


class _SyncSentinelMaster(redis.Redis):
    """The synchronous twin of :class:`_AsyncSentinelMaster`."""

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.connection_pool.sentinel_manager.close()


_CONNECT_ERROR = re.compile(r"Error (\d+) connecting to (\S+?)\.(?:\s|$)")


def failure(exc: BaseException) -> str:
    """What a Redis failure was, in words for a log line or a 503: redis-py's "Error 111
    connecting to host:6379. Connect call failed ('host', 6379)." is "cannot connect to
    host:6379: Connection refused"; an exception without a message is named by its type."""
    text = str(exc).strip()
    found = _CONNECT_ERROR.match(text)
    if found:
        return f"cannot connect to {found[2]}: {os.strerror(int(found[1]))}"
    return text.rstrip(".") or type(exc).__name__
