"""A real Redis Cluster for the tests: 3 masters and 3 replicas on free loopback ports, made
with ``redis-cli --cluster create``, no persistence, a 1 s node timeout so that a killed master's
replica takes over within seconds. Helpers find the master of a key's slot, kill it, and wait
until its replica has taken over.
"""

from __future__ import annotations

import subprocess
from contextlib import AbstractContextManager
from pathlib import Path

from tests.redis_nodes import RedisNode, running
from tests.servers import free_port
from tests.waiting import eventually

MASTERS = 3
NODE_TIMEOUT_MS = 1000  # a silent master is failed over about this long after it went silent
READY_TIMEOUT = 30.0  # seconds for the cluster to agree it is whole


class RedisCluster:
    """``MASTERS`` masters with one replica each; ``url`` names them in our form."""

    def __init__(self, folder: Path) -> None:
        self.nodes = [
            RedisNode(folder / f"node{index}", "--cluster-enabled", "yes",
                      "--cluster-config-file", "nodes.conf",
                      "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                      "--cluster-port", str(free_port()),
                      # a replica always may take over, however long its master was silent
                      "--cluster-replica-validity-factor", "0",
                      "--repl-diskless-sync-delay", "0")
            for index in range(2 * MASTERS)
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(node.address for node in self.nodes[:MASTERS])

    def start(self) -> None:
        """Start the nodes, join them into one cluster, and wait until it is whole."""
        for node in self.nodes:
            node.start()
        subprocess.run(["redis-cli", "--cluster", "create",
                        *(node.address for node in self.nodes),
                        "--cluster-replicas", "1", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        eventually(self.whole, READY_TIMEOUT, "the cluster agreeing it is whole")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def live(self) -> list[RedisNode]:
        return [node for node in self.nodes if node.alive]

    def whole(self) -> bool:
        """True when every live node says the cluster is ok and every master has a replica
        that is in sync with it."""
        masters = [node for node in self.live() if node.info("replication")["role"] == "master"]
        return (self._every_live_node_ok()
                and len(masters) == MASTERS
                and all(self._synced_replicas(master) >= 1 for master in masters))

    def _every_live_node_ok(self) -> bool:
        return all(node.call("CLUSTER", "INFO").startswith("cluster_state:ok")
                   for node in self.live())

    @staticmethod
    def _synced_replicas(master: RedisNode) -> int:
        info = master.info("replication")
        return sum(1 for index in range(info["connected_slaves"])
                   if info[f"slave{index}"]["state"] == "online")

    def master_of(self, key: str) -> RedisNode:
        """The live master that owns ``key``'s slot, as a live node sees it."""
        owner = self._owner(self.live()[0], key)
        if owner is None:
            raise LookupError(f"no node owns the slot of {key!r}")
        return self._node(owner)

    def _node(self, port: int) -> RedisNode:
        return next(node for node in self.nodes if node.port == int(port))

    def kill_master_of(self, key: str) -> RedisNode:
        """``kill -9`` the master of ``key``'s slot; the killed node is returned."""
        master = self.master_of(key)
        master.kill()
        return master

    def wait_failover(self, key: str, killed: RedisNode,
                      timeout: float = READY_TIMEOUT) -> RedisNode:
        """Wait until every live node says the cluster is ok and a live node other than
        ``killed`` owns ``key``'s slot; that new master is returned."""
        def taken_over() -> bool:
            return (self._every_live_node_ok()
                    and all(self._owner(node, key) not in (None, killed.port)
                            for node in self.live()))

        eventually(taken_over, timeout, f"a replica taking over from port {killed.port}")
        return self.master_of(key)

    @staticmethod
    def _owner(node: RedisNode, key: str) -> int | None:
        slot = node.call("CLUSTER", "KEYSLOT", key)
        for start, end, master, *_ in node.call("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        return None

    def restart(self, node: RedisNode) -> None:
        """Start a killed node again; it rejoins as a replica (its nodes.conf was kept) and this
        returns once the cluster is whole again, so the next test finds 3 pairs."""
        node.start()
        eventually(self.whole, READY_TIMEOUT, f"port {node.port} rejoining as a replica")


def redis_cluster() -> AbstractContextManager[RedisCluster]:
    """A running cluster in a temporary folder, stopped and removed after."""
    return running(RedisCluster, "cluster")
