"""Test support: a throwaway Sentinel deployment (a master, one replica, three sentinels),
each a real process on a free port, that a test can fail over by SIGKILLing the master.
``127.0.0.1:6379`` and ``26379`` are never touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Any

import redis

from worqr_py.tools.embedded import free_port, redis_binary, terminate

from .support import RedisServer, wait_for

SERVICE = "mymaster"


class SentinelProcess:
    """``redis-server <conf> --sentinel`` with a config file of its own (sentinel rewrites it)
    that monitors ``SERVICE`` at the given master port with a quorum of 2."""

    def __init__(self, directory: str, master_port: int) -> None:
        self.port = free_port()
        self.conf = os.path.join(directory, f"sentinel-{self.port}.conf")
        with open(self.conf, "w") as f:
            f.write(
                f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 3000\n"
            )
        self.proc = subprocess.Popen(
            [redis_binary(), self.conf, "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(port=self.port, socket_timeout=1.0, decode_responses=True)

    def ask(self, *command: Any) -> Any:
        """A command's reply, or None while the sentinel does not answer."""
        try:
            return self.client.execute_command(*command)
        except redis.RedisError:
            return None

    def stop(self) -> None:
        self.client.close()
        terminate(self.proc)


class SentinelCluster:
    """A master, one replica (``--replicaof``) whose link is up, and three sentinels that know
    the replica and each other (so a failover needs no further discovery). ``stop()`` ends
    every process and removes their directory, whatever state the test left them in."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="worqr-sentinel-")
        self.sentinels: list[SentinelProcess] = []
        self.master = RedisServer("--repl-diskless-sync-delay", "0")
        try:
            self.replica = RedisServer("--replicaof", "127.0.0.1", str(self.master.port))
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        r = self.replica.client(decode_responses=True)
        try:
            wait_for(
                lambda: _link_status(r) == "up",
                timeout=20,
                what="the replica's link to the master",
            )
        finally:
            r.close()
        self.sentinels = [SentinelProcess(self.dir, self.master.port) for _ in range(3)]

        def ready() -> bool:
            return all(
                len(s.ask("SENTINEL", "SENTINELS", SERVICE) or ()) == 2
                and len(s.ask("SENTINEL", "REPLICAS", SERVICE) or ()) == 1
                for s in self.sentinels
            )

        wait_for(ready, timeout=20, what="three sentinels that know each other and the replica")

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", s.port) for s in self.sentinels]

    @property
    def url(self) -> str:
        hosts = ",".join(f"{h}:{p}" for h, p in self.addresses)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def master_port(self) -> int | None:
        """The master's port by the first sentinel that answers, or None."""
        for s in self.sentinels:
            reply = s.ask("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
            if reply:
                return int(reply[1])
        return None

    def stop(self) -> None:
        for s in self.sentinels:
            s.stop()
        for server in (getattr(self, "replica", None), self.master):
            if server is not None:
                server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _link_status(r: redis.Redis) -> str | None:
    try:
        return str(r.info("replication").get("master_link_status"))
    except redis.RedisError:
        return None
