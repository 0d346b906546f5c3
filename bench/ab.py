"""A/B of this checkout against an earlier revision on one server: enqueue one by one and in
lists of 50, and ``Worqr.run`` at prefetch 1 and 10, in alternating pairs (A B, B A, ...),
each run a subprocess importing its own checkout. Prints per pair and the medians: tasks/s,
the client's CPU per task (its process, all threads: steadier than the rate on a noisy
machine), Redis CPU and commands per task (inside scripts included, from INFO), and the
ratio this/earlier.

    .venv/bin/python bench/ab.py 7e98bb4 [--pairs 6] [--tasks 20000]

The earlier revision is checked out with ``git worktree`` under /tmp and removed after.
No assertion depends on a timing; this is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worqr_py.embedded import EmbeddedRedis  # noqa: E402

RUN = r"""
import json, sys, time, redis
from worqr_py import Worqr
url, prefix, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
r = redis.Redis.from_url(url)
def info():
    cpu = r.info("cpu"); stats = r.info("stats")
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"], stats["total_commands_processed"]
w = Worqr(url, prefix=prefix)
if mode == "enqueue":
    c0, k0 = info(); p0 = time.process_time(); t0 = time.perf_counter()
    for i in range(n):
        w.enqueue("q", str(i))
    wall = time.perf_counter() - t0
elif mode == "lists":
    tasks = [str(i) for i in range(n)]
    c0, k0 = info(); p0 = time.process_time(); t0 = time.perf_counter()
    for s in range(0, n, 50):
        w.enqueue("q", tasks[s : s + 50])
    wall = time.perf_counter() - t0
else:
    for s in range(0, n, 1000):
        w.enqueue("q", [str(i) for i in range(s, min(n, s + 1000))])
    seen = 0
    def handler(p):
        global seen
        seen += 1
        if seen >= n:
            w.shutdown()
    c0, k0 = info(); p0 = time.process_time(); t0 = time.perf_counter()
    w.run("q", handler, prefetch=int(mode))
    wall = time.perf_counter() - t0
cpu = time.process_time() - p0
c1, k1 = info()
w.close()
print(json.dumps({"per_s": n / wall, "cpu_us": cpu * 1e6 / n, "redis_us": (c1 - c0) * 1e6 / n,
                  "cmds": (k1 - k0) / n}))
"""


LABELS = {"enqueue": "enqueue one by one", "lists": "enqueue in lists of 50"}


def run(checkout: Path, url: str, prefix: str, mode: str, n: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run(
        [sys.executable, "-c", RUN, url, prefix, mode, str(n)],
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rev", help="the earlier revision (a commit)")
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--tasks", type=int, default=20_000)
    args = ap.parse_args()
    old = Path(tempfile.mkdtemp(prefix="worqr-ab-"))
    subprocess.run(["git", "worktree", "add", "-f", "-q", str(old), args.rev], cwd=ROOT, check=True)
    modes = {"enqueue": args.tasks // 4, "lists": args.tasks * 5, "1": args.tasks, "10": args.tasks}
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        m: {"this": [], "earlier": []} for m in modes
    }
    server = EmbeddedRedis().start()
    try:
        for pair in range(args.pairs):
            order = [("this", ROOT), ("earlier", old)]
            if pair % 2:
                order.reverse()
            for mode, n in modes.items():
                for name, checkout in order:
                    got = run(checkout, server.url, f"ab{pair}{name}{mode}", mode, n)
                    results[mode][name].append(got)
                    print(f"[ab] pair {pair} {mode} {name}: {got}", file=sys.stderr, flush=True)
    finally:
        server.stop()
        subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, check=False)
    print(f"\n# A/B: this checkout against {args.rev}, {args.pairs} alternating pairs\n")
    print(
        "| workload | tasks/s this | earlier | ratio (median of pairs) | client CPU us/task "
        "this | earlier | Redis us/task this | earlier | commands/task this | earlier |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode, by in results.items():
        ratios = [a["per_s"] / b["per_s"] for a, b in zip(by["this"], by["earlier"], strict=True)]

        def med(name: str, key: str, by: dict[str, list[dict[str, float]]] = by) -> float:
            return statistics.median(x[key] for x in by[name])

        label = LABELS.get(mode, f"run, prefetch {mode}")
        print(
            f"| {label} | {med('this', 'per_s'):,.0f} | {med('earlier', 'per_s'):,.0f} | "
            f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) | "
            f"{med('this', 'cpu_us'):.1f} | {med('earlier', 'cpu_us'):.1f} | "
            f"{med('this', 'redis_us'):.1f} | {med('earlier', 'redis_us'):.1f} | "
            f"{med('this', 'cmds'):.2f} | {med('earlier', 'cmds'):.2f} |"
        )


if __name__ == "__main__":
    main()
