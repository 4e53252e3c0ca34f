"""A real Sentinel setup for the tests: a master, a replica and 3 sentinels (quorum 2) on free
loopback ports, no persistence, with short timeouts so that a killed master is replaced within
seconds. Helpers kill the master, wait until the sentinels agree on the new one, and start the
old one again (the sentinels make it a replica of the new master).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from tests.redis_nodes import RedisNode, running
from tests.servers import HOST
from tests.waiting import eventually

SERVICE = "resound"  # the master's name the sentinels watch
SENTINELS = 3
QUORUM = 2
# A silent master is subjectively down after this. At 500 ms a master starved of CPU on a loaded
# 2-core machine could be taken down meanwhile, and a client then found no master (a clean CI
# run failed so once).
DOWN_AFTER_MS = 2000
FAILOVER_TIMEOUT_MS = 1000  # a failed election is tried again after twice this
READY_TIMEOUT = 30.0  # seconds for the setup to be whole, or a failover to be agreed


class RedisSentinel:
    """Data nodes ``servers`` (a master and its replica) watched by ``sentinels``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # a new replica syncs at once instead of waiting for others to share the transfer
        master = RedisNode(folder / "server0", "--repl-diskless-sync-delay", "0")
        replica = RedisNode(folder / "server1", "--repl-diskless-sync-delay", "0",
                            "--replicaof", HOST, str(master.port))
        self.servers = [master, replica]
        self.sentinels = [RedisNode(folder / f"sentinel{index}", "--sentinel")
                          for index in range(SENTINELS)]

    @property
    def url(self) -> str:
        return (f"redis+sentinel://{','.join(node.address for node in self.sentinels)}"
                f"/{SERVICE}")

    def start(self) -> None:
        """Start the master, then its replica, then the sentinels; wait until every sentinel
        knows the master, the replica and the two other sentinels."""
        master, replica = self.servers
        master.start()
        replica.start()
        eventually(lambda: replica.info("replication")["master_link_status"] == "up",
                   READY_TIMEOUT, "the replica syncing with the master")
        for sentinel in self.sentinels:
            config = sentinel.folder / "sentinel.conf"
            config.write_text(
                f"sentinel monitor {SERVICE} {HOST} {master.port} {QUORUM}\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n")
            sentinel.start(config=config)
        eventually(self.whole, READY_TIMEOUT, "every sentinel seeing the master, its replica "
                                              "and the other sentinels")

    def stop(self) -> None:
        for node in [*self.sentinels, *self.servers]:
            node.stop()

    def whole(self) -> bool:
        """True when every sentinel sees the master up, a replica and the other sentinels."""
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                state = client.sentinel_master(SERVICE)
            if (state["is_sdown"] or state["num-slaves"] < 1
                    or state["num-other-sentinels"] < SENTINELS - 1):
                return False
        return True

    def master(self) -> RedisNode:
        """The data node every sentinel names as the master (fails if they disagree)."""
        ports = self._named_masters()
        assert len(ports) == 1, f"the sentinels disagree on the master: ports {sorted(ports)}"
        return next(node for node in self.servers if node.port in ports)

    def _named_masters(self) -> set[int]:
        """The master ports the sentinels name (one when they agree)."""
        return {int(sentinel.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)[1])
                for sentinel in self.sentinels}

    def kill_master(self) -> RedisNode:
        """``kill -9`` the master; the killed node is returned."""
        master = self.master()
        master.kill()
        return master

    def wait_failover(self, killed: RedisNode, timeout: float = READY_TIMEOUT) -> RedisNode:
        """Wait until every sentinel names a live master other than ``killed`` and that node
        says it is a master; it is returned."""

        def replaced() -> bool:
            ports = self._named_masters()
            if len(ports) != 1 or killed.port in ports:
                return False
            node = next(node for node in self.servers if node.port in ports)
            return node.alive and node.info("replication")["role"] == "master"

        eventually(replaced, timeout, f"the sentinels replacing the master on port {killed.port}")
        return self.master()

    def restart(self, node: RedisNode) -> None:
        """Start a killed data node again as a replica of the current master (as an operator
        would: left to the sentinels, a returning master is turned into a replica only at their
        next 10 s INFO poll); this returns once it is in sync and the sentinels see it."""
        node.start("--replicaof", HOST, str(self.master().port))
        eventually(lambda: node.info("replication")["role"] == "slave"
                   and node.info("replication")["master_link_status"] == "up",
                   READY_TIMEOUT, f"the sentinels making port {node.port} a replica")
        eventually(self.whole, READY_TIMEOUT, "every sentinel seeing the setup whole again")


def redis_sentinel() -> AbstractContextManager[RedisSentinel]:
    """A running Sentinel setup in a temporary folder, stopped and removed after."""
    return running(RedisSentinel, "sentinel")
