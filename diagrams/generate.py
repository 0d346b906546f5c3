"""Regenerate the operation diagrams in this folder from a real Redis.

Each scenario runs one worqr_py operation on a throwaway redis-server and writes
``<name>.txt``: the keys before and after (drawn by ``worqr_py.state.render``) and every
command Redis executed for it, as MONITOR saw them (commands a Lua script ran are indented).
Worker ids are shown as W1, W2 so the files are stable.

    python diagrams/generate.py            # rewrite the files
    python diagrams/generate.py --check    # exit 1 if a committed file is out of date
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from worqr_py import Worqr
from worqr_py.core import scripts
from worqr_py.embedded import EmbeddedRedis
from worqr_py.tools.render import render

HERE = Path(__file__).resolve().parent
SLOW = {"heartbeat_interval": 3600.0, "heartbeat_ttl": 7200.0, "poll_interval": 3600.0}


@dataclass
class Scenario:
    name: str
    title: str
    call: str
    setup: Callable[[Worqr, Worqr], Any]
    run: Callable[[Worqr, Worqr], Any]


def _working(*ws: Worqr) -> None:
    for w in ws:
        w.start_worker()
        w.start_work("jobs")


def _expire(w: Worqr) -> None:
    w._redis.delete(w._core.keys.heartbeat(w.worker_id or ""))  # what expiry does


def _takes_turn(w: Worqr) -> None:
    """What W's heartbeat does when it wins the supervision turn (SET sup W NX PX)."""
    w._redis.set(w._core.keys.supervisor, w.worker_id or "", nx=True, px=w._core._turn_ms())


SCENARIOS = [
    Scenario(
        "enqueue",
        "a producer appends tasks at the tail and announces them",
        'enqueue("jobs", ["T1", "T2"])',
        lambda a, b: a.enqueue("jobs", "T0"),
        lambda a, b: a.enqueue("jobs", ["T1", "T2"]),
    ),
    Scenario(
        "start-worker",
        "a worker registers, then joins a queue",
        'start_worker(); start_work("jobs")',
        lambda a, b: None,
        lambda a, b: _working(a),
    ),
    Scenario(
        "keep-alive",
        "one heartbeat: refresh the key (XX) and try for the supervision turn",
        "(every heartbeat_interval, in the background)",
        lambda a, b: _working(a),
        lambda a, b: a._run(a._core.beat()),
    ),
    Scenario(
        "dequeue",
        "worker W1 takes the task at the head of the queue",
        'dequeue("jobs")',
        lambda a, b: (a.enqueue("jobs", ["T1", "T2"]), _working(a)),
        lambda a, b: a.dequeue("jobs"),
    ),
    Scenario(
        "finish",
        "W1 finishes its process: fenced, it must still be W1's",
        'finish_process("jobs_W1.1")',
        lambda a, b: (a.enqueue("jobs", ["T1", "T2"]), _working(a), a.dequeue("jobs")),
        lambda a, b: a.finish_process(a.processes[0].id),
    ),
    Scenario(
        "stop",
        "W1 gives its process back: to the FRONT, with its delivery count",
        'stop_process("jobs_W1.1")',
        lambda a, b: (a.enqueue("jobs", ["T1", "T2"]), _working(a), a.dequeue("jobs")),
        lambda a, b: a.stop_process(a.processes[0].id),
    ),
    Scenario(
        "cancel",
        "every queued copy of a task is removed; workers are told",
        'cancel_tasks("jobs", "X")',
        lambda a, b: a.enqueue("jobs", ["T1", "X", "T2", "X"]),
        lambda a, b: a.cancel_tasks("jobs", "X"),
    ),
    Scenario(
        "reclaim",
        "W1's heartbeat expired; peer W2's supervision returns W1's processes",
        "(W2's supervision turn, in the background)",
        lambda a, b: (
            a.enqueue("jobs", ["T1", "T2", "T3"]),
            _working(a, b),
            a.dequeue("jobs"),
            b.dequeue("jobs"),
            _expire(a),
            _takes_turn(b),
        ),
        lambda a, b: b._run(b._core.supervise()),
    ),
    Scenario(
        "fail-worker",
        "graceful shutdown: W1 returns everything at once and leaves",
        "fail_worker()  (also what close() and leaving `with` do)",
        lambda a, b: (
            a.enqueue("jobs", ["T1", "T2", "T3"]),
            _working(a),
            a.dequeue_many("jobs", 2),
        ),
        lambda a, b: a.fail_worker(),
    ),
    Scenario(
        "delete",
        "a queue is deleted; processes in flight are left to their workers",
        'delete_queue("jobs")',
        lambda a, b: a.enqueue("jobs", ["T1", "T2"]),
        lambda a, b: a.delete_queue("jobs"),
    ),
]


MINUTE = 29_000_000  # the minute (since the epoch) every drawing counts throughput in


def monitor(r: redis.Redis, action: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run ``action`` and return its result with the commands Redis executed meanwhile."""
    names = {s.sha: f"<{s.name}.lua>" for s in scripts.ALL}
    lines: list[str] = []
    with r.monitor() as m:
        result = action()
        redis.Redis(connection_pool=r.connection_pool).echo("__end__")
        while (c := m.next_command())["command"] != "ECHO __end__":
            words = c["command"]
            if c["client_type"] != "lua" and words.split(" ")[0] in ("HELLO", "CLIENT"):
                continue  # a connection's handshake, not the operation
            for sha, name in names.items():
                words = words.replace(sha, name)
            lines.append(("      " if c["client_type"] == "lua" else "  ") + words)
    return result, lines


def draw(server: EmbeddedRedis, s: Scenario) -> str:
    r = redis.Redis(port=server.port, decode_responses=True)
    r.flushall()
    a, b = Worqr(server.url, **SLOW).init(), Worqr(server.url, **SLOW)
    for w in (a, b):  # a fixed minute for the throughput counters' key: stable diagrams
        w._core.wall = lambda: MINUTE * 60.0
    try:
        s.setup(a, b)
        before = a._run(a._core.snapshot(["jobs"]))
        result, commands = monitor(r, lambda: s.run(a, b))
        after = a._run(a._core.snapshot(["jobs"]))
        alias = {wid: f"W{i}" for i, wid in enumerate((a.worker_id, b.worker_id), 1) if wid}
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        shown = repr(result)
        for long, short in alias.items():
            shown, commands = shown.replace(long, short), [c.replace(long, short) for c in commands]
        head = f"{s.name}: {s.title}"
        return "\n".join(
            [
                head,
                "=" * len(head),
                "",
                f"    {s.call}  ->  {shown}",
                "",
                "Before",
                "",
                render(before, alias),
                "After (* = changed)",
                "",
                render(after, alias, changed),
                "Redis executed, in order (MONITOR; indented commands ran inside the script):",
                "",
                *commands,
                "",
            ]
        )
    finally:
        for w in (a, b):
            w._core.worker.failed = w._core.worker.failed or "diagram done"  # no cleanup
            w.close()


def main(check: bool) -> int:
    stale = []
    with EmbeddedRedis() as server:
        for s in SCENARIOS:
            path = HERE / f"{s.name}.txt"
            text = draw(server, s)
            if check:
                if not path.exists() or path.read_text() != text:
                    stale.append(path.name)
            else:
                path.write_text(text)
    if stale:
        print("out of date (run python diagrams/generate.py):", ", ".join(stale))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv))
