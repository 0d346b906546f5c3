"""Markdown rendering of the dict that bench/peers.py writes as JSON."""

from __future__ import annotations

from typing import Any

COLUMNS = [
    "lib",
    "version",
    "enqueue/s",
    "batch/s",
    "process/s (c=1)",
    "cmds/task",
    "round trips/task",
    "crash safety (SIGKILL)",
    "notes",
]


def rate(x: dict[str, Any] | None) -> str:
    if not x or x.get("per_s") is None:
        return "n/a"
    s = f"{x['per_s']:,.0f}"
    if x.get("capped"):
        s += f" (capped, {x['done']}/{x['n']})"
    return s


def num(v: float | None, digits: int) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def pair(a: dict[str, Any] | None, b: dict[str, Any] | None, key: str, digits: int) -> str:
    """``enqueue + processing`` figures of one kind, e.g. ``8.0 + 57.1``."""
    return f"{num((a or {}).get(key), digits)} + {num((b or {}).get(key), digits)}"


def ceiling_row(c: dict[str, Any]) -> list[str]:
    single, piped, lua, ping = c["lpush_single"], c["lpush_pipelined"], c["lua_consume"], c["ping"]
    client = f"redis-py {c['redis_py']}" + (" + hiredis" if c.get("hiredis") else "")
    notes = (
        f"enqueue = 1 LPUSH per round trip; batch = pipelined LPUSH x{c['batch_size']} "
        f"({num(piped['cmds_per_task'], 1)} cmds, {num(piped['round_trips_per_task'], 2)} "
        f"round trips/task); process = 1 EVALSHA/task: LREM ack of the previous + LMOVE "
        f"next; PING {rate(ping)} round trips/s "
        f"({num(ping['round_trips_per_task'], 2)} measured round trips/PING)"
    )
    return [
        "**ceiling** (bare redis-py)",
        client,
        rate(single),
        rate(piped),
        rate(lua),
        pair(single, lua, "cmds_per_task", 1),
        pair(single, lua, "round_trips_per_task", 2),
        "",
        notes,
    ]


def peer_row(p: dict[str, Any]) -> list[str]:
    name = p["name"]
    if p.get("skipped"):
        return [name, p.get("version") or "", "", "", "", "", "", "", f"SKIPPED: {p['skipped']}"]
    enq, batch, proc = p.get("enqueue"), p.get("batch"), p.get("process")
    notes: list[str] = []
    if proc:
        notes.append(proc["worker"])
        if proc.get("spawn_to_done_s") is not None:
            notes.append(f"spawn->done {proc['spawn_to_done_s']:.2f} s")
        else:
            notes.append(f"done {proc['done']}/{proc['n']} in {proc['window_s']:.0f} s cap")
        if proc.get("worker_log_tail"):
            notes.append("worker log: " + " / ".join(proc["worker_log_tail"][-2:]))
    if batch:
        notes.append(
            f"batch x{batch['batch_size']}: {num(batch['cmds_per_task'], 2)} cmds, "
            f"{num(batch['round_trips_per_task'], 2)} round trips/task"
        )
    if p.get("error"):
        notes.append(f"ERROR: {p['error']}")
    vers = dict(p.get("versions") or {})
    vers.pop(name.split("-")[0], None)
    hiredis = vers.pop("hiredis", None)
    vers["redis-py"] = vers.pop("redis", None)
    notes.append(", ".join(f"{k} {v}" for k, v in vers.items()) + (" + hiredis" if hiredis else ""))
    if p.get("notes"):
        notes.append(p["notes"])
    if p.get("canary_ping_per_s"):
        notes.append(f"PING canary {p['canary_ping_per_s']:,.0f}/s")
    return [
        name,
        p.get("version") or "",
        rate(enq),
        rate(batch) if batch else "n/a (no API)",
        rate(proc),
        pair(enq, proc, "cmds_per_task", 1),
        pair(enq, proc, "round_trips_per_task", 2),
        p.get("crash", ""),
        "; ".join(notes),
    ]


def table(rows: list[list[str]], variant: str = "c1") -> str:
    cols = [c.replace("(c=1)", f"({variant})") if variant != "c1" else c for c in COLUMNS]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def detail(peers: list[dict[str, Any]]) -> str:
    lines = [
        "| lib | phase | done/N | cmds/task | round trips/task | redis CPU us/task "
        "| top commands/task |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in peers:
        for phase in ("enqueue", "batch", "process"):
            x = p.get(phase)
            if not x:
                continue
            top = ", ".join(f"{k} {v:g}" for k, v in x["top_cmds_per_task"].items())
            top = top.replace("|", "\\|")
            lines.append(
                f"| {p['name']} | {phase} | {x['done']}/{x['n']} | "
                f"{num(x['cmds_per_task'], 2)} | {num(x['round_trips_per_task'], 2)} | "
                f"{num(x['redis_usec_per_task'], 1)} | {top} |"
            )
    return "\n".join(lines)


def render(result: dict[str, Any]) -> str:
    m = result["meta"]
    rows = [ceiling_row(result["ceiling"])] if result.get("ceiling") else []
    rows += [peer_row(p) for p in result.get("peers", [])]
    head = (
        f"Date {m['date']}, {m['cpus']} CPUs, redis-server {m['redis_server']}, "
        f"Python {m['python']} ({m['platform']}); N = {m['n']} tasks, "
        f"cap {m['cap_s']:.0f} s per measurement, worker variant {m['variant']}, 1 rep."
    )
    parts = [head, "", table(rows, m["variant"]), "", LEGEND]
    if result.get("peers"):
        parts += ["", detail(result["peers"])]
    return "\n".join(parts)


LEGEND = (
    "enqueue/s: one task per call, sequential. batch/s: the library's batch API in "
    "batches of 50. process/s: one worker subprocess, one job at a time, N jobs queued "
    "beforehand; rate = (done-1)/(last job's end - first job's end); the worker's "
    "start-up is excluded (see spawn->done). cmds/task and round trips/task: "
    "enqueue + processing; commands = delta of INFO commandstats calls (commands inside "
    "Lua scripts and MULTI/EXEC included), round trips = delta of INFO stats "
    "total_reads_processed (server read events, all clients), both per task; the "
    "processing figures include the worker's start-up and idle polling. Crash safety: "
    "from the reference SIGKILL test and the libraries' docs, not measured here."
)
