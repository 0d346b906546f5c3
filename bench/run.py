"""The benchmark: worqr_py against its honest ceiling and against the peers, with a SIGKILL
test per configuration, in ONE run against throwaway redis-servers (never 6379).

    bash bench/setup_peers.sh          # once: the peers (Python venvs, BullMQ via npm)
    .venv/bin/python bench/run.py [--quick] [--only worqr,dramatiq,...] [--json out.json]

Order (see README "Performance"): the SIGKILL tests start first, in the background, on a
redis-server of their own (one database each); the timed part starts once they have killed
their worker and started the fresh one. Then, on the main server: the ceiling and worqr_py
alternating (C W C W C), enqueue against bare RPUSH likewise, then two chains, "default"
and "best single process": W P1 W P2 W ..., where W is worqr_py of that class and P the
peers' configurations of that class, so every peer figure has a worqr_py figure right before
and right after it. Prints markdown (also written to bench/results.md). No assertion here
depends on a timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ceiling  # type: ignore[import-not-found]
import peers  # type: ignore[import-not-found]
import report  # type: ignore[import-not-found]
import worqr_bench as wb  # type: ignore[import-not-found]


def _rate(res: dict[str, Any]) -> float | None:
    return (res.get("process") or {}).get("per_s")


def alternate(ceil: Any, ours: Any, rounds: int) -> dict[str, Any]:
    """C W C W ... C: every W between two C's; ratio = W / mean of its two neighbours."""
    cs, ws = [ceil()], []
    for _ in range(rounds):
        ws.append(ours())
        cs.append(ceil())
    ratios = []
    for i, w in enumerate(ws):
        around = [cs[i]["per_s"], cs[i + 1]["per_s"]]
        if w.get("per_s") and all(around):
            ratios.append(round(w["per_s"] / (sum(around) / 2), 3))
    return {"ceiling": cs, "worqr": ws, "ratios": ratios}


def chain(cls: str, configs: list[peers.Config], url: str, n: int, cap: float) -> list[Any]:
    """W P1 W P2 W ... W for one class; each peer result gets its two worqr_py neighbours."""
    w = peers.WORQR[cls]
    prev = peers.measure(w, url, n, cap)
    out = []
    for c in configs:
        res = peers.measure(c, url, n, cap)
        nxt = peers.measure(w, url, n, cap)
        res["class"] = cls
        res["worqr_before"], res["worqr_after"] = _rate(prev), _rate(nxt)
        res["worqr_runs"] = [prev, nxt]
        out.append(res)
        prev = nxt
    return out


def measure(args: argparse.Namespace, url: str, crash_url: str, work: Path) -> dict[str, Any]:
    only = set(args.only.split(",")) if args.only else None
    selected = [c for c in peers.PEERS if only is None or c.name in only]
    ours = [peers.WORQR["default"], peers.WORQR["best"], *peers.WORQR_EXTRA]
    res: dict[str, Any] = {"meta": peers.meta(url)}
    res["meta"].update(n=args.n, cap_s=args.cap, rounds=args.rounds, crash_max_s=args.crash_max)
    crashes: list[peers.CrashTest] = []
    if not args.no_crash:
        print("[bench] SIGKILL tests: starting ...", file=sys.stderr, flush=True)
        for db, c in enumerate([*ours, *selected], start=1):
            crashes.append(peers.CrashTest(c, peers.with_db(crash_url, db), args.crash_max, work))
            time.sleep(1.0)  # staggered: 19 worker start-ups at once starve a small machine
        deadline = time.monotonic() + 180
        while not all(t.waiting() for t in crashes) and time.monotonic() < deadline:
            time.sleep(0.5)
        if args.crash_apart:
            res["crash"] = [t.result() for t in crashes]
            crashes = []
    main = peers.with_db(url, 1)
    print("[bench] ceiling vs worqr_py ...", file=sys.stderr, flush=True)
    res["ceiling"] = {
        "prefetch1": alternate(
            lambda: ceiling.consume(main, args.n, 1),
            lambda: (
                peers.measure(peers.WORQR["default"], main, args.n, args.cap).get("process") or {}
            ),
            args.rounds,
        ),
        "prefetch10": alternate(
            lambda: ceiling.consume(main, args.n, 10),
            lambda: peers.measure(peers.WORQR["best"], main, args.n, args.cap).get("process") or {},
            args.rounds,
        ),
        "enqueue1": alternate(
            lambda: ceiling.push(main, args.n, 1), lambda: wb.enqueue(main, args.n), args.rounds
        ),
        "enqueue50": alternate(
            lambda: ceiling.push(main, args.n, 50),
            lambda: wb.enqueue(main, args.n, 50),
            args.rounds,
        ),
    }
    res["peers"] = []
    for cls in ("default", "best"):
        configs = [c for c in selected if cls in c.classes]
        if configs:
            res["peers"] += chain(cls, configs, main, args.n, args.cap)
    res["worqr_extra"] = [peers.measure(c, main, args.n, args.cap) for c in peers.WORQR_EXTRA]
    if not args.quick or args.extras:
        print("[bench] latency, memory, supervision ...", file=sys.stderr, flush=True)
        res["latency"] = wb.latency(main)
        res["memory"] = wb.memory(main)
        res["supervision"] = wb.supervision(main)
    if crashes:
        print("[bench] SIGKILL tests: collecting ...", file=sys.stderr, flush=True)
        res["crash"] = [t.result() for t in crashes]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, help="tasks per measurement (default 10000; quick 2000)")
    ap.add_argument("--cap", type=float, help="seconds of processing at most (10; quick 5)")
    ap.add_argument("--rounds", type=int, help="worqr_py runs between ceilings (3; quick 1)")
    ap.add_argument("--quick", action="store_true", help="small N, 1 round, shorter waits")
    ap.add_argument(
        "--only", help="comma-separated peers (worqr_py always runs): " + ",".join(peers.NAMES)
    )
    ap.add_argument("--crash-max", type=float, help="longest SIGKILL wait, s (660; quick 90)")
    ap.add_argument("--crash-apart", action="store_true", help="SIGKILL tests before, not during")
    ap.add_argument("--no-crash", action="store_true", help="skip the SIGKILL tests")
    ap.add_argument("--extras", action="store_true", help="latency/memory/supervision in --quick")
    ap.add_argument("--json", type=Path, help="also write everything measured here")
    ap.add_argument("--render", type=Path, help="measure nothing: render this --json file")
    args = ap.parse_args()
    if args.render:
        print(report.render(json.loads(args.render.read_text())), end="")
        return
    q = args.quick
    args.n = args.n or (2000 if q else 10000)
    args.cap = args.cap or (5.0 if q else 10.0)
    args.rounds = args.rounds or (1 if q else 3)
    args.crash_max = args.crash_max or (90.0 if q else 660.0)
    t0 = time.monotonic()
    with (
        peers.throwaway_server() as url,
        peers.throwaway_server(databases=64) as crash_url,
        tempfile.TemporaryDirectory(prefix="bench-crash-") as tmp,
    ):
        res = measure(args, url, crash_url, Path(tmp))
    res["meta"]["wall_s"] = round(time.monotonic() - t0, 1)
    text = report.render(res)
    print(text)
    (Path(__file__).resolve().parent / "results.md").write_text(text)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
