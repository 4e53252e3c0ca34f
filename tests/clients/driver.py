"""pytest's end of js/driver.mjs: real pusher-js / laravel-echo clients in one Node process.

Tests send commands ("create an Echo client", "listen on this channel", "whisper") and then wait
for what the clients report seeing. Every client keeps its full event log, in arrival order, so a
test can also assert that something did *not* arrive.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("js") / "driver.mjs"
WAIT = 20.0


class DriverError(AssertionError):
    """A command failed in Node, a wait timed out, or the driver died; the message says which."""


class NodeDriver:
    """One ``node driver.mjs`` process and everything its clients reported."""

    def __init__(self, node: str, script: Path = DRIVER,
                 env: dict[str, str] | None = None) -> None:
        """``script``: js/driver.mjs (clients in Node) or another driver speaking its protocol;
        ``env``: the driver's environment (default: the test's)."""
        self.proc = subprocess.Popen(
            [node, str(script)], cwd=ROOT, text=True, bufsize=1, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.stderr: deque[str] = deque(maxlen=100)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            message = json.loads(line)
            with self._changed:
                if "reply" in message:
                    self._replies[message["reply"]] = message
                else:
                    self.events.append(message["event"])
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())

    def _why(self) -> str:
        tail = "\n".join(self.stderr) or "(nothing on stderr)"
        return f"\nnode stderr:\n{tail}\nclient events so far:\n{json.dumps(self.events, indent=1)}"

    def call(self, op: str, timeout: float = WAIT, **args: Any) -> Any:
        """Run ``op`` in Node and return its value; raise :class:`DriverError` if it failed."""
        command_id = next(self._ids)
        self.proc.stdin.write(json.dumps({"id": command_id, "op": op, **args}) + "\n")
        self.proc.stdin.flush()
        with self._changed:
            if not self._changed.wait_for(
                lambda: command_id in self._replies or self.proc.poll() is not None, timeout
            ):
                raise DriverError(f"{op} got no reply within {timeout} s{self._why()}")
            reply = self._replies.pop(command_id, None)
        if reply is None:
            raise DriverError(f"the Node driver exited during {op}{self._why()}")
        if not reply["ok"]:
            raise DriverError(f"{op} failed in Node: {reply['error']}{self._why()}")
        return reply["value"]

    def matching(self, **fields: Any) -> list[dict[str, Any]]:
        """Every event so far whose fields equal ``fields``, in arrival order."""
        with self._changed:  # re-entrant: wait_for calls this while holding it
            return [e for e in self.events if all(e.get(k) == v for k, v in fields.items())]

    def wait_for(self, count: int = 1, timeout: float = WAIT, **fields: Any) -> dict[str, Any]:
        """Wait until ``count`` events match ``fields``; return the ``count``-th one."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self.matching(**fields)
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise DriverError(
                        f"no event #{count} matching {fields} within {timeout} s{self._why()}"
                    )
                self._changed.wait(left)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Client:
    """One named client in the driver; methods mirror the Echo / pusher-js calls they make."""

    def __init__(self, driver: NodeDriver, name: str, socket_id: str) -> None:
        self.driver = driver
        self.name = name
        self.socket_id = socket_id

    @classmethod
    def echo(cls, driver: NodeDriver, name: str, options: dict[str, Any],
             resume: bool = False) -> Client:
        """``new Echo(options)`` (with pusher-js), connected; with ``resume``, tracked by
        @resound/resume (clients/js), which reports ``resumed`` and ``failed`` events."""
        return cls(driver, name, driver.call("echo", client=name, options=options,
                                             resume=resume))

    @classmethod
    def pusher(cls, driver: NodeDriver, name: str, key: str, options: dict[str, Any],
               resume: bool = False) -> Client:
        """``new Pusher(key, options)``, connected; ``resume`` as for :meth:`echo`."""
        return cls(driver, name, driver.call("pusher", client=name, key=key, options=options,
                                             resume=resume))

    def _call(self, op: str, **args: Any) -> Any:
        return self.driver.call(op, client=self.name, **args)

    def signin(self) -> dict[str, Any]:
        """``Echo.connector.signin()`` / ``pusher.signin()``; the signed-in ``user_data``."""
        return self._call("signin")

    def watch(self) -> None:
        """Report ``pusher.user.watchlist``'s online and offline events (before signin)."""
        self._call("watch")

    def subscription_count(self, channel: str) -> int | None:
        """pusher-js's ``channel.subscriptionCount``, as its last count event set it."""
        return self._call("subscriptionCount", channel=channel)

    def subscribe(self, channel: str, kind: str = "channel") -> str:
        return self._call("subscribe", kind=kind, channel=channel)

    def listen(self, channel: str, event: str, kind: str = "private") -> str:
        return self._call("listen", kind=kind, channel=channel, event=event)

    def listen_for_whisper(self, channel: str, event: str, kind: str = "private") -> str:
        return self._call("listenForWhisper", kind=kind, channel=channel, event=event)

    def whisper(self, channel: str, event: str, data: Any, kind: str = "private") -> None:
        self._call("whisper", kind=kind, channel=channel, event=event, data=data)

    def bind(self, channel: str, event: str) -> None:
        self._call("bind", channel=channel, event=event)

    def trigger(self, channel: str, event: str, data: Any) -> bool:
        return self._call("trigger", channel=channel, event=event, data=data)

    def leave(self, channel: str) -> None:
        self._call("leave", channel=channel)

    def disconnect(self) -> None:
        self._call("disconnect")

    def connect(self) -> str:
        """``pusher.connect()`` after the server closed the socket; the new socket id."""
        return self._call("connect")

    def wait_for(self, count: int = 1, timeout: float = WAIT, **fields: Any) -> dict[str, Any]:
        return self.driver.wait_for(count=count, timeout=timeout, client=self.name, **fields)

    def seen(self, **fields: Any) -> list[dict[str, Any]]:
        return self.driver.matching(client=self.name, **fields)
