"""The benchmark: worqr_py, the bare redis-py ceiling and the peers, in ONE run against ONE
throwaway redis-server, with the ratios the performance issue sets as targets.

    bash bench/setup_peers.sh                         # once: peers in their own virtualenvs
    python bench/run.py --n 5000 [--json out.json] [--no-peers]

Figures are printed as a markdown table (also written to ``bench/results.md``). Nothing here is
a test: no assertion depends on a timing.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import worqr_py

import ceiling  # type: ignore[import-not-found]
import peers  # type: ignore[import-not-found]
import worqr_bench as wb

# Re-run with default settings after its worker is SIGKILLed (the SIGKILL test of
# ../shared/reference/peer-benchmarks.md): the peers that are crash-safe out of the box.
CRASH_SAFE = {"dramatiq", "taskiq-stream", "celery", "arq"}


def measure(url: str, n: int, with_peers: bool, workers: int, rounds: int) -> dict[str, Any]:
    """Everything, with each ratio PAIRED: the loopback latency of a VM drifts over minutes,
    so worqr_py is measured right next to what it is compared with (alternating with the
    ceiling for ``rounds`` rounds; once just before each peer)."""
    c = wb.Counter(url)
    out: dict[str, Any] = {"meta": peers.meta(url, n, 30.0, "c1")}
    out["meta"]["worqr_py"] = worqr_py.__version__
    out["meta"]["redis_py"] = importlib.metadata.version("redis")
    out["meta"]["hiredis"] = importlib.metadata.version("hiredis")
    print("[bench] worqr_py ...", file=sys.stderr, flush=True)
    out["worqr"] = {
        "enqueue": wb.enqueue(url, n, c),
        "process_prefetch10": wb.process(url, n, c, prefetch=10),
        f"process_{workers}_workers": wb.process_workers(url, n, workers, c),
        "latency": wb.latency(url),
        "memory": wb.memory(url),
        "supervision": wb.supervision(url),
    }
    print("[bench] worqr_py and the ceiling, alternating ...", file=sys.stderr, flush=True)
    out["rounds"] = []
    for _ in range(rounds):
        ours = wb.process(url, n, c, prefetch=1)
        batch = wb.enqueue(url, n, c, batch=50)
        ceil = ceiling.measure_ceiling(url, n)
        out["rounds"].append({"process": ours, "batch": batch, "ceiling": ceil})
    by_ratio = sorted(out["rounds"], key=_ceiling_ratio)
    median = by_ratio[len(by_ratio) // 2]
    out["worqr"]["process"], out["worqr"]["batch"] = median["process"], median["batch"]
    out["ceiling"] = median["ceiling"]
    out["peers"] = []
    for name in peers.ALL_PEERS if with_peers else []:
        ours = wb.process(url, n, c, prefetch=1)
        (theirs,) = peers.measure_peers(url, n, [name])
        theirs["worqr_alongside"] = ours
        out["peers"].append(theirs)
    return out


def _ceiling_ratio(r: dict[str, Any]) -> float:
    return float(r["process"]["per_s"] / r["ceiling"]["lua_consume"]["per_s"])


def _rate(x: dict[str, Any] | None) -> float | None:
    return x.get("per_s") if x and not x.get("skipped") else None


def render(res: dict[str, Any], workers: int) -> str:
    m, w, ceil = res["meta"], res["worqr"], res["ceiling"]
    lines = [
        f"Measured {m['date']} on {m['cpus']} CPUs, redis-server {m['redis_server']}, "
        f"Python {m['python']}, worqr_py {m['worqr_py']} (redis-py {m.get('redis_py')}, hiredis "
        f"{m.get('hiredis')}), N={m['n']}, one run, one server.",
        "",
        "| what | tasks/s | cmds/task | round trips/task |",
        "| --- | --- | --- | --- |",
    ]

    def row(name: str, x: dict[str, Any]) -> None:
        lines.append(
            f"| {name} | {x['per_s']:,.0f} | {x['cmds_per_task']} | {x['round_trips_per_task']} |"
        )

    row("worqr_py enqueue, one by one", w["enqueue"])
    row("worqr_py enqueue, lists of 50", w["batch"])
    row("worqr_py 1 worker, 1 at a time (prefetch 1)", w["process"])
    row("worqr_py 1 worker, 1 at a time (prefetch 10)", w["process_prefetch10"])
    row(f"worqr_py {workers} worker processes", w[f"process_{workers}_workers"])
    row("ceiling: LPUSH one by one", ceil["lpush_single"])
    row("ceiling: LPUSH pipelined x50", ceil["lpush_pipelined"])
    row("ceiling: one Lua call per task (ack + LMOVE)", ceil["lua_consume"])
    lat, mem = w["latency"], w["memory"]
    lines += [
        "",
        f"Enqueue -> handler latency ({lat['samples']} samples, idle worker woken by pub/sub): "
        f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms. Memory per queued 10-byte task: "
        f"{mem['bytes_per_task']} B (a bare Redis list: {mem['bare_list_bytes_per_task']} B).",
        "",
        "| idle workers | commands/s (heartbeats + supervision) | per worker | MGET scans/s |",
        "| --- | --- | --- | --- |",
    ]
    for s in w["supervision"]:
        lines.append(
            f"| {s['workers']} | {s['commands_per_s']:,.0f} | {s['per_worker_per_s']} "
            f"| {s['mget_per_s']} |"
        )
    lines += [
        "",
        "| peer | version | process/s (1 worker, c=1) | worqr_py alongside | worqr_py / peer "
        "| crash-safe by default |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    best: dict[str, Any] | None = None
    for p in res["peers"]:
        r = _rate(p.get("process"))
        if r is None:
            lines.append(f"| {p['name']} | - | skipped: {p.get('skipped', 'no figure')} | | | |")
            continue
        ours = p["worqr_alongside"]["per_s"]
        safe = p["name"] in CRASH_SAFE
        if safe and (best is None or r > _rate(best["process"])):  # type: ignore[operator]
            best = p
        capped = " (capped)" if p["process"].get("capped") else ""
        lines.append(
            f"| {p['name']} | {p.get('version', '')} | {r:,.0f}{capped} | {ours:,.0f} | "
            f"{ours / r:.1f}x | {'yes' if safe else 'no'} |"
        )
    ratios = [_ceiling_ratio(r) for r in res["rounds"]]
    batch = [r["batch"]["per_s"] / r["ceiling"]["lpush_pipelined"]["per_s"] for r in res["rounds"]]
    lines += [
        "",
        "Ratios against the targets, each from measurements taken side by side (the ceiling: "
        f"{len(ratios)} alternating rounds, median shown):",
        f"- 1 worker, 1 at a time / ceiling one-script loop: {sorted(ratios)[len(ratios) // 2]:.2f}"
        f" (rounds: {', '.join(f'{x:.2f}' for x in ratios)}; target >= 0.7)",
        f"- lists of 50 / pipelined LPUSH: {sorted(batch)[len(batch) // 2]:.2f} "
        f"(rounds: {', '.join(f'{x:.2f}' for x in batch)}; target >= 0.7)",
        f"- round trips per task, busy worker: {w['process']['round_trips_per_task']} "
        "(target <= 1.1)",
    ]
    if best is not None:
        ratio = best["worqr_alongside"]["per_s"] / _rate(best["process"])  # type: ignore[operator]
        lines.append(
            f"- 1 worker / fastest crash-safe peer ({best['name']}): {ratio:.1f}x (target >= 3)"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="worqr_py/ceiling alternations")
    args = ap.parse_args()
    with peers.throwaway_server() as url:
        res = measure(url, args.n, not args.no_peers, args.workers, args.rounds)
    text = render(res, args.workers)
    print(text)
    (Path(__file__).resolve().parent / "results.md").write_text(text)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
