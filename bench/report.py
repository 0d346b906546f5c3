"""Markdown rendering of the dict that bench/run.py builds (and writes with --json)."""

from __future__ import annotations

import statistics
from typing import Any

TARGET_PEER, TARGET_CEILING = 3.0, 0.8
NOISY = 1.5  # flag a ratio whose two worqr_py neighbours differ by more than this factor


def num(v: float | None, digits: int = 0) -> str:
    return "n/a" if v is None else f"{v:,.{digits}f}"


def mark(ratio: float | None, target: float) -> str:
    if ratio is None:
        return "n/a"
    return f"**{'MET' if ratio >= target else 'MISS'}** (target >= {target:g}x)"


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = sorted((r for r in runs if r.get("per_s")), key=lambda r: r["per_s"])
    return ok[len(ok) // 2] if ok else {}


def counters(x: dict[str, Any]) -> list[str]:
    return [
        num(x.get("worker_cpu_us_per_task"), 1),
        num(x.get("redis_cpu_us_per_task"), 1),
        num(x.get("cmds_per_task"), 2),
        num(x.get("round_trips_per_task"), 2),
    ]


def crash_cell(c: dict[str, Any] | None) -> str:
    if not c:
        return "not run"
    if c.get("skipped") or not c.get("crash") or "survived" not in c["crash"]:
        return "n/a: " + str(c.get("skipped") or (c.get("crash") or {}).get("error", "?"))
    x = c["crash"]
    if x.get("error"):
        return f"n/a: {x['error']}"
    if x["survived"]:
        return f"yes ({x['all_done_after_kill_s']} s)"
    doc = (x.get("documented_reclaim") or [0])[0]
    later = f"; documented reclaim after {doc:g} s" if doc and doc + 30 > x["wait_s"] else ""
    return f"no ({x['lost']} lost in {x['wait_s']:.0f} s{later})"


def survived(c: dict[str, Any] | None) -> bool:
    return bool(c and (c.get("crash") or {}).get("survived"))


def ceiling_part(res: dict[str, Any]) -> list[str]:
    c = res["ceiling"]
    names = {
        "prefetch1": ("dequeue.lua, prefetch 1, raw connection", "worqr_py worker, defaults"),
        "prefetch10": ("dequeue.lua, prefetch 10, raw connection", "worqr_py worker, prefetch 10"),
        "enqueue1": ("RPUSH q v, one per task", "worqr_py enqueue, one by one"),
        "enqueue50": ("RPUSH q v1..v50, one per 50 tasks", "worqr_py enqueue, lists of 50"),
    }
    lines = [
        "| what | tasks/s (median) | runs | client/worker CPU us/task | Redis CPU us/task "
        "| cmds/task | round trips/task |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, (cname, wname) in names.items():
        for label, runs in ((f"ceiling: {cname}", c[key]["ceiling"]), (wname, c[key]["worqr"])):
            m = median_run(runs)
            every = ", ".join(num(r.get("per_s")) for r in runs)
            lines.append(
                f"| {label} | {num(m.get('per_s'))} | {every} | " + " | ".join(counters(m)) + " |"
            )
    lines += [
        "",
        "Against the honest ceiling (each worqr_py run / the mean of the two ceiling runs "
        "around it):",
    ]
    for key, (cname, wname) in names.items():
        rs = c[key]["ratios"]
        med = statistics.median(rs) if rs else None
        lines.append(
            f"- {wname} / {cname}: {num(med, 2)}x (runs: {', '.join(f'{r:.2f}' for r in rs)}) "
            f"{mark(med, TARGET_CEILING)}"
        )
    return lines


def config_rows(res: dict[str, Any], crash: dict[str, Any]) -> list[str]:
    lines = [
        "| configuration | class | version | tasks/s | worqr_py before / after | worqr_py / it "
        "| worker CPU us/task | Redis CPU us/task | cmds/task | round trips/task "
        "| survives SIGKILL |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    worqr_runs: dict[str, list[dict[str, Any]]] = {}
    for p in res["peers"]:
        for w in p.get("worqr_runs", []):
            worqr_runs.setdefault(w.get("variant", "?"), []).append(w)
    for p in res.get("worqr_extra", []):
        worqr_runs.setdefault(p.get("variant", "?"), []).append(p)
    for variant, runs in worqr_runs.items():
        uniq = list({id(r): r for r in runs}.values())
        m = median_run([r["process"] for r in uniq if r.get("process")])
        label = next((r.get("label") for r in uniq if r.get("label")), variant)
        version = next((r["versions"].get("worqr") for r in uniq if r.get("versions")), "")
        lines.append(
            f"| worqr_py: {label} | | {version} "
            f"| {num(m.get('per_s'))} (median of {len(uniq)}) | | | "
            + " | ".join(counters(m))
            + f" | {crash_cell(crash.get(f'worqr:{variant}'))} |"
        )
    for p in res["peers"]:
        key = f"{p['name']}:{p['variant']}"
        if p.get("skipped"):
            lines.append(
                f"| {key} | {p.get('class', '')} | | skipped: {p['skipped']} | | | | | | | |"
            )
            continue
        x = p["process"]
        rate = x.get("per_s")
        capped = f" (capped: {x['done']}/{x['n']})" if x.get("capped") else ""
        ws = [w for w in (p.get("worqr_before"), p.get("worqr_after")) if w]
        ratio = f"{sum(ws) / len(ws) / rate:.1f}x" if ws and rate else "n/a"
        if len(ws) == 2 and max(ws) > NOISY * min(ws):
            ratio += " (noisy: its neighbours differ)"
        vers = p.get("versions", {})
        lines.append(
            f"| {p.get('label', key)} | {p['class']} | {vers.get(p['name'].split('-')[0], '')} "
            f"| {num(rate)}{capped} | {num(p.get('worqr_before'))} / {num(p.get('worqr_after'))} "
            f"| {ratio} | " + " | ".join(counters(x)) + f" | {crash_cell(crash.get(key))} |"
        )
    return lines


def crash_rows(res: dict[str, Any]) -> list[str]:
    lines = [
        "| configuration | at the kill: done / in flight / processes killed | completed of 20 "
        "| lost "
        "| duplicates | all done after kill | waited | documented reclaim |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in res.get("crash", []):
        x = c.get("crash") or {}
        doc = x.get("documented_reclaim") or [None, ""]
        if "survived" not in x:
            why = c.get("skipped") or x.get("error") or "?"
            lines.append(f"| {c['name']}:{c['variant']} | n/a: {why} | | | | | | {doc[1]} |")
            continue
        lines.append(
            f"| {c.get('label', c['name'])} | {x['done_before_kill']} / {x['in_flight_at_kill']} "
            f"/ {x['killed_processes']} "
            f"| {x['completed']} | {x['lost']} | {x['duplicates']} "
            f"| {num(x.get('all_done_after_kill_s'), 1)} s | {x['wait_s']:.0f} s | {doc[1]} |"
        )
    return lines


def target_lines(res: dict[str, Any], crash: dict[str, Any]) -> list[str]:
    out = []
    for cls, what in (("default", "defaults vs defaults"), ("best", "best single process vs best")):
        safe = [
            p
            for p in res["peers"]
            if p.get("class") == cls
            and not p.get("skipped")
            and (p.get("process") or {}).get("per_s")
            and survived(crash.get(f"{p['name']}:{p['variant']}"))
        ]
        if not safe:
            out.append(
                f"- worqr_py {cls} / best crash-safe {cls} peer ({what}): "
                "no peer of this class survived SIGKILL in this run"
            )
            continue
        best = max(safe, key=lambda p: p["process"]["per_s"])
        rate = best["process"]["per_s"]
        ws = [w for w in (best.get("worqr_before"), best.get("worqr_after")) if w]
        ratio = sum(ws) / len(ws) / rate if ws else None
        noisy = len(ws) == 2 and max(ws) > NOISY * min(ws)
        out.append(
            f"- worqr_py {cls} / best crash-safe {cls} peer, {best.get('label')} ({what}): "
            f"{num(ratio, 2)}x (worqr_py {' and '.join(num(w) for w in ws)} "
            f"around its {num(rate)}) "
            f"{mark(ratio, TARGET_PEER)}"
            + (" (noisy: the two worqr_py figures differ by more than 1.5x)" if noisy else "")
        )
    return out


def render(res: dict[str, Any]) -> str:
    m = res["meta"]
    crash = {f"{c['name']}:{c['variant']}": c for c in res.get("crash", [])}
    lines = [
        f"Measured {m['date']} on {m['cpus']} CPUs (load average at start "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg_start'])}), redis-server {m['redis_server']}, "
        f"Python {m['python']}; N = {m['n']} tasks per measurement, cap {m['cap_s']:g} s, "
        f"{m['rounds']} worqr_py run(s) between ceiling runs; SIGKILL waits up to "
        f"{m['crash_max_s']:g} s; wall time {m.get('wall_s', '?')} s.",
        "",
        *ceiling_part(res),
        "",
        *config_rows(res, crash),
        "",
        "Targets, against the peers that survived SIGKILL in this run (like for like):",
        *target_lines(res, crash),
    ]
    if res.get("crash"):
        lines += [
            "",
            "SIGKILL test (20 tasks of 0.5 s; the worker's whole process tree killed; "
            "a fresh default worker started at once):",
            "",
            *crash_rows(res),
        ]
    if res.get("latency"):
        lat, mem = res["latency"], res["memory"]
        lines += [
            "",
            f"Enqueue -> handler latency ({lat['samples']} samples, idle worker woken by pub/sub): "
            f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms. Memory per queued 10-byte task: "
            f"{mem['bytes_per_task']} B (a bare Redis list: {mem['bare_list_bytes_per_task']} B).",
            "",
            "| idle workers | commands/s (heartbeats + supervision) | per worker | MGET scans/s |",
            "| --- | --- | --- | --- |",
            *(
                f"| {s['workers']} | {s['commands_per_s']:,.0f} | {s['per_worker_per_s']} "
                f"| {s['mget_per_s']} |"
                for s in res["supervision"]
            ),
        ]
    return "\n".join(lines) + "\n"
