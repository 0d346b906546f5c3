"""A real Redis Cluster for the tests: 3 masters and 3 replicas from ``redis-server
--cluster-enabled yes`` on free ports, joined by ``redis-cli --cluster create
--cluster-replicas 1 --cluster-yes``, ready once every node says ``cluster_state:ok`` and every
replica's link to its master is up (a master killed before that is never replaced).
127.0.0.1:6379 is never touched; every process ends with ``stop()``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import Any

import redis
from redis.crc import key_slot

from worqr_py.embedded import free_port

from .support import RedisServer

CREATE = ["--cluster-replicas", "1", "--cluster-yes"]
NODE_TIMEOUT_MS = 2000  # how long a master may be silent before its replica takes over


def _cli() -> str:
    for name in ("redis-cli", "valkey-cli"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no redis-cli or valkey-cli on PATH: cannot create a cluster")


def _port_pair() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(50):
        port = free_port()
        if port + 10000 < 65536:
            try:
                import socket

                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port pair for a cluster node")


class ClusterNode(RedisServer):
    def __init__(self) -> None:
        self._wanted = _port_pair()
        super().__init__(
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(NODE_TIMEOUT_MS),
            "--repl-diskless-sync-delay",
            "0",
        )

    def client(self, **kw: Any) -> redis.Redis:
        """A client that gives up on a silent (SIGSTOPped) node instead of hanging."""
        kw.setdefault("socket_timeout", 2)
        kw.setdefault("socket_connect_timeout", 2)
        return super().client(**kw)

    def start(self, timeout: float = 10.0) -> ClusterNode:
        if not self.started:
            self.port = self._wanted
        super().start(timeout)
        return self


class RedisCluster:
    """Six nodes, three of them masters, with every slot covered."""

    def __init__(self) -> None:
        self.nodes: list[ClusterNode] = []
        try:
            self.nodes = [ClusterNode() for _ in range(6)]
            addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
            subprocess.run(
                [_cli(), "--cluster", "create", *addresses, *CREATE],
                check=True,
                capture_output=True,
                timeout=60,
            )
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def client(self, **kw: Any) -> redis.RedisCluster:
        """A cluster client whose startup nodes are the running ones (a SIGKILLed node is
        skipped; a silent one times out)."""
        live = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        kw.setdefault("socket_timeout", 2)
        kw.setdefault("socket_connect_timeout", 2)
        startup = [redis.cluster.ClusterNode("127.0.0.1", n.port) for n in live]
        return redis.RedisCluster(startup_nodes=startup, **kw)

    def info(self, node: ClusterNode, section: str) -> dict[str, Any]:
        return node.client(decode_responses=True).info(section)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Every live node sees the cluster ok, every replica's master link is up, and every
        master's replica has acknowledged a write (``WAIT``): a replica just synced is not
        sent the stream until its first acknowledgement (up to a second later), so a write
        made before that would be lost with a master killed meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                live = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
                ok = all(
                    "cluster_state:ok"
                    in str(n.client(decode_responses=True).execute_command("CLUSTER", "INFO"))
                    for n in live
                )
                repl = [self.info(n, "replication") for n in live]
                if (
                    ok
                    and all(
                        r.get("master_link_status") == "up" for r in repl if r["role"] == "slave"
                    )
                    and all(self._links_up(n, len(live)) for n in live)
                    and all(self._replicated(n) for n in live if n.pings())
                ):
                    return
            except (redis.RedisError, OSError, AttributeError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the cluster did not become ready")
            time.sleep(0.1)

    @staticmethod
    def _replicated(node: ClusterNode) -> bool:
        """For a master with replicas: a write of a key in its slots reaches one of them."""
        client = node.client(decode_responses=True)
        if client.info("replication")["role"] != "master":
            return True
        mine = client.execute_command("CLUSTER", "MYID")
        rows = [r.split() for r in str(client.execute_command("CLUSTER", "NODES")).splitlines()]
        if not any(r[3] == mine for r in rows):
            return True  # no replica
        me = next(r for r in rows if r[0] == mine)
        spans = [s for s in me[8:] if not s.startswith("[")]
        if not spans:
            return True  # no slots
        low, _, high = spans[0].partition("-")
        owned = range(int(low), int(high or low) + 1)
        key = next(k for k in (f"ready-{i}" for i in range(10**6)) if key_slot(k.encode()) in owned)
        client.set(key, "1")
        acked = int(client.execute_command("WAIT", 1, 2000))
        client.delete(key)
        return acked >= 1

    @staticmethod
    def _links_up(node: ClusterNode, live: int) -> bool:
        """The node's cluster bus is up with every live node (no handshake under way), and a
        master knows its replica: a replica's manual failover needs both, and they come after
        the replication link."""
        lines = str(node.client(decode_responses=True).execute_command("CLUSTER", "NODES"))
        rows = [line.split() for line in lines.strip().splitlines()]
        me = next(r for r in rows if "myself" in r[2])
        if "master" in me[2] and not any(r[3] == me[0] for r in rows):
            return False  # it does not know its replica yet (it would ignore its failover)
        up = [
            r
            for r in rows
            if "connected" in r and not {"handshake", "fail", "fail?"} & set(r[2].split(","))
        ]
        return len(up) >= live

    def masters(self) -> list[ClusterNode]:
        """The running nodes that answer as masters (a silent one is left out)."""
        live = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        found = []
        for n in live:
            try:
                if self.info(n, "replication")["role"] == "master":
                    found.append(n)
            except (redis.RedisError, OSError):
                continue
        return found

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


def node_id(node: ClusterNode) -> str:
    return str(node.client(decode_responses=True).execute_command("CLUSTER", "MYID"))


def move_slot(
    c: RedisCluster, slot: int, source: ClusterNode, target: ClusterNode, pause: float = 0.0
) -> int:
    """Move one slot, with its keys, from ``source`` to ``target`` as ``redis-cli --cluster
    reshard`` does: IMPORTING/MIGRATING, MIGRATE the keys in batches (``pause`` seconds
    apart), then SETSLOT NODE on every master. Returns how many keys moved."""
    src, dst = source.client(decode_responses=True), target.client(decode_responses=True)
    src_id, dst_id = node_id(source), node_id(target)
    dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    moved = 0
    while True:
        keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10)
        if not keys:
            break
        src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        moved += len(keys)
        time.sleep(pause)
    for node in c.masters():
        node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    return moved
