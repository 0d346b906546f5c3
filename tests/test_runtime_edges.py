"""Edges of the runtime a second review found: run() cancelled the asyncio way, and a
re-registration that could join only some of its queues. Real redis-servers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from worqr_py import AsyncWorqr
from worqr_py.core.keys import Keys

from .support import RedisServer, running, wait_for


def test_cancelling_async_run_leaves_no_runner_behind(server: RedisServer, prefix: str) -> None:
    """wait_for / TaskGroup / lifespan shutdown cancel run(): its jobs end with it and do not
    re-register and take work afterwards."""
    ran: list[str] = []

    async def main() -> None:
        w = AsyncWorqr(server.url, prefix=prefix, heartbeat_interval=0.1, heartbeat_ttl=1.0)
        await w.enqueue("q", "before")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(w.run("q", lambda p: ran.append(p.task), concurrency=2), 1.0)
        assert ran == ["before"]
        left = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("worqr-run")]
        assert left == []
        assert not w.alive
        await w.enqueue("q", "after-run-returned")
        await asyncio.sleep(0.3)  # a runner left behind would take it meanwhile
        assert await w.get_tasks("q") == ["after-run-returned"]
        await w.close()

    asyncio.run(main())
    assert ran == ["before"]


def test_a_rejoin_that_joins_only_some_queues_keeps_trying_the_rest(
    make: Any, servers: Any, prefix: str
) -> None:
    """After a failure the runner registers again; if one queue refuses the join for a while
    (here NOPERM on its keys, as READONLY or BUSY would), it joins that queue later instead of
    never."""
    s = servers()
    r = s.client(decode_responses=True)
    keys = Keys(prefix)
    w = make(url=s.url, heartbeat_interval=0.1, heartbeat_ttl=3.0, poll_interval=0.3)
    w.events.on("error", lambda exc: None)  # the refused joins and cleanups: expected
    done: list[str] = []

    def working() -> set[str]:  # the queues the client itself works on
        return set(getattr(w, "inner", w)._core.worker.queues)

    with running(w, ["q1", "q2"], lambda p: done.append(p.task)):
        first = w.worker_id
        allowed = [f"~{{{prefix}}}*", f"~{prefix}:{{q1}}*"]  # q2's keys refused
        r.execute_command("ACL", "SETUSER", "default", "resetkeys", *allowed)
        try:
            r.delete(keys.heartbeat(first))  # the worker's lease vanishes: it registers again
            wait_for(lambda: w.alive and w.worker_id != first, timeout=15, what="a new worker id")
            assert "q2" not in working()
        finally:
            r.execute_command("ACL", "SETUSER", "default", "resetkeys", "~*")
        wait_for(lambda: "q2" in working(), timeout=15, what="q2 joined at last")
        make(url=s.url).enqueue("q2", "t2")
        wait_for(lambda: "t2" in done, timeout=15, what="t2 done")
