"""Jobs with results: worqr_py's job layer against the peers that store results in Redis.

worqr_py's ``submit`` / ``run_jobs`` and the peers that store a task's return value, in ONE
run on one throwaway redis-server.

    .venv/bin/python bench/jobs.py [--n 10000] [--cap 10] [--rounds 3] [--only rq,celery]

Each measurement is ``peers.measure`` (bench/peer_driver.py, the method of bench/run.py): N
jobs ``add(i, 1)`` are pre-filled with the library's client, ONE worker process runs them,
each stamps its number and returns ``i + 1``, which the library stores in Redis (the app's
``results*`` variants: see bench/peerapps/__init__.py); jobs/s = first to last completion.
After the worker stopped, the driver reads back ~100 stored results (column "results read
back"). Modes: "one" = one job at a time; "many" = the library's prefetch or concurrency.
The peers: rq, arq, saq, celery (Redis result backend), taskiq (taskiq-redis result backend)
and also huey and BullMQ, which store a return value by default too (dramatiq needs its
Results middleware: not measured).

Also here:

* plain tasks: worqr_py's ``Worqr.run`` rows (the ``default`` / ``prefetch10`` variants of
  bench/run.py) next to its job rows in each round, so the cost of storing a result shows as
  a ratio (results / plain, median over ``--rounds`` rounds spread over the run);
* round trips per job: besides the server-wide ``total_reads_processed`` figure of the table,
  a separate untimed run of each worqr_py job variant under MONITOR counts the TOP-LEVEL
  commands the worker's connections sent (EVALSHA = 1; commands run inside scripts are
  tagged ``lua`` by MONITOR and not counted), in the processing window, per job;
* SIGKILL: not re-run here. "documented" is the app's ``RECLAIM`` (0: an abandoned job is
  never re-run); "measured" is what the SIGKILL test of bench/run.py last found for the
  same library (the rows of bench/results.md with the same documented reclaim).

Prints markdown and writes it to bench/jobs_results.md. No assertion depends on a timing.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import redis  # noqa: E402

import peer_driver as pd  # noqa: E402
import peers  # noqa: E402
from report import num  # noqa: E402

C = peers.Config
PLAIN = {"one": C("worqr", "default", ("one",)), "many": C("worqr", "prefetch10", ("many",))}
OURS = {"one": C("worqr", "results", ("one",)), "many": C("worqr", "results-prefetch10", ("many",))}
PEERS = [
    C("rq", "results", ("one",)),  # rq has no in-process concurrency
    C("arq", "results-j1", ("one",)),
    C("arq", "results", ("many",)),
    C("saq", "results-c1", ("one",)),
    C("saq", "results", ("many",)),
    C("celery", "results", ("one",)),
    C("celery", "results-threads10", ("many",)),
    C("taskiq-list", "results", ("one",)),
    C("taskiq-list", "results-a100", ("many",)),
    C("taskiq-stream", "results", ("one",)),
    C("taskiq-stream", "results-a100", ("many",)),
    C("huey", "results", ("one",)),  # not in the brief's list, but it stores non-None results
    C("huey", "results-w10", ("many",)),
    C("bullmq", "results", ("one",)),  # keeps completed jobs with their returnvalue
    C("bullmq", "results-c10", ("many",)),
]
MODES = {"one": "one at a time", "many": "prefetch / concurrency"}
TARGET_RT = 1.5  # top-level commands (round trips) per job, worqr_py job worker


def rate(r: dict[str, Any]) -> float | None:
    return (r.get("process") or {}).get("per_s")


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = sorted((r for r in runs if rate(r)), key=lambda r: rate(r) or 0.0)
    return ok[len(ok) // 2] if ok else (runs[0] if runs else {})


class Monitor:
    """MONITOR on a raw socket, drained by a thread until a marker ``ECHO``: the top-level
    commands (server time, client address, command) of every client but ``lua``."""

    MARKER = b"bench-jobs-monitor-end"

    def __init__(self, url: str) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 0
        self.sock = socket.create_connection((self.host, self.port))
        self.sock.sendall(b"MONITOR\r\n")
        self.top: list[tuple[float, bytes, bytes]] = []
        self.inner = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        buf = b""
        while not self.done.is_set():
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                break
            *lines, buf = (buf + chunk).split(b"\r\n")
            for line in lines:
                self._line(line)

    def _line(self, line: bytes) -> None:
        if not line.startswith(b"+") or b" [" not in line:
            return  # +OK
        ts, _, rest = line[1:].partition(b" [")
        src, _, args = rest.partition(b"] ")
        client = src.partition(b" ")[2]
        if client == b"lua":
            self.inner += 1
            return
        cmd = args.partition(b" ")[0].strip(b'"').lower()
        if cmd == b"echo" and self.MARKER in args:
            self.done.set()
            return
        self.top.append((float(ts), client, cmd))

    def close(self) -> None:
        """Send the marker from another connection; wait until the drain has read it."""
        r = redis.Redis(host=self.host, port=self.port)
        r.echo(self.MARKER)
        r.close()
        self.thread.join(30)
        self.sock.close()


def round_trips(url: str, variant: str, n: int) -> dict[str, Any]:
    """One untimed run of worqr_py's job worker ``variant`` under MONITOR (see the top)."""
    db = redis.Redis.from_url(url)
    db.flushdb()
    with tempfile.TemporaryDirectory(prefix="bench-jobs-rt-") as tmp:
        work = Path(tmp)
        stamp_file = work / "stamps"
        stamp_file.write_bytes(b"")
        env = {
            **os.environ,
            "BENCH_REDIS_URL": url,
            "BENCH_VARIANT": variant,
            "BENCH_STAMP_FILE": str(stamp_file),
            "PYTHONPATH": str(HERE),
            "PYTHONUNBUFFERED": "1",
        }
        fill = f"from peerapps import worqr_app; worqr_app.enqueue({n})"
        subprocess.run([sys.executable, "-c", fill], env=env, check=True, timeout=300)
        mon = Monitor(url)
        with (work / "worker.log").open("ab") as out:
            argv = [sys.executable, "-m", "peerapps.worqr_app", variant]
            proc = subprocess.Popen(
                argv,
                cwd=work,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        try:
            while pd.count(stamp_file) < n and time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                time.sleep(0.02)
        finally:
            pd.stop(proc)
            mon.close()
            db.flushdb()
            db.close()
        st = sorted(t for t, _ in pd.stamps(stamp_file))
    done = len(st)
    base: dict[str, Any] = {"variant": variant, "n": n, "done": done}
    if done < 2:
        return {**base, "error": "fewer than 2 jobs done"}
    inside = [(c, cmd) for t, c, cmd in mon.top if st[0] < t <= st[-1]]
    per_cmd: dict[str, int] = {}
    for _, cmd in inside:
        per_cmd[cmd.decode()] = per_cmd.get(cmd.decode(), 0) + 1
    return {
        **base,
        "window_per_job": round(len(inside) / (done - 1), 3),
        "whole_per_job": round(len(mon.top) / done, 3),  # start-up and shutdown included
        "connections": len({c for _, c, _ in mon.top}),
        "top": {
            k: round(v / (done - 1), 4) for k, v in sorted(per_cmd.items(), key=lambda kv: -kv[1])
        },
        "inner_per_job": round(mon.inner / done, 2),
    }


def measured_sigkill(path: Path) -> tuple[str, dict[str, list[bool]]]:
    """bench/results.md's date and SIGKILL table: documented-reclaim text -> survived, per
    row (the plain-task configurations of each library that bench/run.py tested)."""
    out: dict[str, list[bool]] = {}
    if not path.exists():
        return "never", out
    rows, table, date = path.read_text().splitlines(), False, "?"
    for line in rows:
        if line.startswith("Measured ") and date == "?":
            date = line.split()[1]
        if line.startswith("SIGKILL test"):
            table = True
        elif table and line.startswith("| ") and not line.startswith(("| configuration", "| ---")):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) >= 8 and cells[3].isdigit():
                out.setdefault(cells[7], []).append(cells[3] == "0")
        elif table and line and not line.startswith("|"):
            table = not out
    return date, out


def sigkill_cells(res: dict[str, Any], measured: dict[str, list[bool]]) -> tuple[str, str]:
    secs, text = (res.get("reclaim") or [None, ""])[:2]
    if secs is None:
        return "n/a", "n/a"
    doc = "no (never re-run)" if secs == 0 else f"yes, after {secs:g} s"
    got = measured.get(text)
    if not got:
        return doc, "not measured"
    if all(got):
        return doc, f"yes ({len(got)} of {len(got)} configurations)"
    return doc, f"no ({got.count(False)} of {len(got)} configurations lost jobs)"


def row(r: dict[str, Any], mode: str, runs: list[dict[str, Any]], measured: Any) -> str:
    key = f"{r.get('name')}:{r.get('variant')}"
    if r.get("skipped"):
        return f"| {key} | {MODES[mode]} | | skipped: {r['skipped']} |" + " |" * 8
    x = r.get("process") or {}
    vers = r.get("versions") or {}
    version = next(iter(vers.values()), "") if vers else ""
    capped = f" (capped: {x.get('done')}/{x.get('n')})" if x.get("capped") else ""
    every = ", ".join(num(rate(q)) for q in runs) if len(runs) > 1 else ""
    got = x.get("results") or {}
    back = got.get("error") or f"{got.get('stored', '?')}/{got.get('checked', '?')}"
    doc, seen = sigkill_cells(r, measured)
    name = "worqr_py: " if r.get("name") == "worqr" else ""
    return (
        f"| {name}{r.get('label', key)} | {MODES[mode]} | {version} | {num(x.get('per_s'))}"
        f"{capped} | {every} | {num(x.get('worker_cpu_us_per_task'), 1)} "
        f"| {num(x.get('redis_cpu_us_per_task'), 1)} | {num(x.get('cmds_per_task'), 2)} "
        f"| {num(x.get('round_trips_per_task'), 2)} | {back if got else 'n/a'} | {doc} | {seen} |"
    )


def render(res: dict[str, Any]) -> str:
    m = res["meta"]
    when, measured = measured_sigkill(HERE / "results.md")
    lines = [
        "# Jobs with results: worqr_py against the peers that store results",
        "",
        f"Measured {m['date']} on {m['cpus']} CPUs (load average at start "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg_start'])}), redis-server {m['redis_server']}, "
        f"Python {m['python']}; N = {m['n']} jobs `add(i, 1)` per measurement, one worker "
        f"process, cap {m['cap_s']:g} s, {m['rounds']} round(s) of the worqr_py rows; "
        f"wall time {m.get('wall_s', '?')} s. Method: bench/jobs.py.",
        "",
        "| configuration | mode | version | jobs/s | worqr_py runs | worker CPU us/job "
        "| Redis CPU us/job | cmds/job | round trips/job | results read back "
        "| survives SIGKILL: documented | measured (results.md) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode in ("one", "many"):
        for kind in ("plain", "ours"):
            runs = [rd[kind][mode] for rd in res["rounds"]]
            lines.append(row(median_run(runs), mode, runs, measured))
        for p in res["peers"]:
            if p["mode"] == mode:
                lines.append(row(p, mode, [p], measured))
    lines += [
        "",
        "worqr_py rows: median of the rounds (each round: plain, then jobs, side by side); the "
        "plain rows are `Worqr.run` with no job and no result. Survives SIGKILL: "
        '"documented" is the app\'s RECLAIM (0 s: an abandoned job is never re-run); '
        f'"measured" is the SIGKILL test of bench/run.py recorded in bench/results.md ({when}: '
        "the plain-task configurations with the same broker and documented reclaim; not re-run "
        "here). worqr_py jobs: tests/test_job_runtime.py SIGKILLs a job worker mid-job and "
        "checks that a peer re-queues the job and it finishes.",
        "",
    ]
    lines += ["Ratios (worqr_py jobs/s with results stored):", ""]
    for mode in ("one", "many"):
        per = [
            rate(rd["ours"][mode]) / rate(rd["plain"][mode])  # type: ignore[operator]
            for rd in res["rounds"]
            if rate(rd["ours"][mode]) and rate(rd["plain"][mode])
        ]
        med = statistics.median(per) if per else None
        lines.append(
            f"- jobs / plain tasks, {MODES[mode]}: {num(med, 2)}x "
            f"(rounds: {', '.join(f'{x:.2f}' for x in per)})"
        )
    ours_all = {
        mode: rate(median_run([rd["ours"][mode] for rd in res["rounds"]])) for mode in MODES
    }
    for mode in (*MODES, "any"):
        cands = [p for p in res["peers"] if rate(p) and mode in (p["mode"], "any")]
        if not cands:
            continue
        best = max(cands, key=lambda p: rate(p) or 0.0)
        mine = max(ours_all.values(), key=lambda v: v or 0.0) if mode == "any" else ours_all[mode]
        ratio = f"{mine / rate(best):.1f}x" if mine else "n/a"  # type: ignore[operator]
        what = (
            "best worqr_py job row / fastest peer overall"
            if mode == "any"
            else (f"worqr_py jobs, {MODES[mode]} / fastest peer in that mode")
        )
        lines.append(f"- {what}: {ratio} ({num(mine)} vs {num(rate(best))}, {best.get('label')})")
    lines += ["", "Round trips per job of the worqr_py job worker (MONITOR, untimed run):", ""]
    for rt in res.get("round_trips", []):
        if rt.get("error"):
            lines.append(f"- {rt['variant']}: n/a ({rt['error']})")
            continue
        ok = "MET" if rt["window_per_job"] <= TARGET_RT else "MISS"
        top = ", ".join(f"{k} {v:g}" for k, v in list(rt["top"].items())[:5])
        lines.append(
            f"- {rt['variant']}: {rt['window_per_job']:.3f} top-level commands per job in the "
            f"processing window (**{ok}**, target <= {TARGET_RT:g}); {rt['whole_per_job']:.3f} "
            f"over the worker's whole life incl. start-up and shutdown; {rt['connections']} "
            f"connection(s); per job: {top}; commands run inside scripts: "
            f"{rt['inner_per_job']:g} per job ({rt['done']}/{rt['n']} jobs done)"
        )
    return "\n".join(lines) + "\n"


def measure(args: argparse.Namespace, url: str) -> dict[str, Any]:
    main = peers.with_db(url, 1)
    only = set(args.only.split(",")) if args.only else None
    chosen = [c for c in PEERS if only is None or c.name in only]
    res: dict[str, Any] = {"meta": peers.meta(url), "rounds": [], "peers": []}
    res["meta"].update(n=args.n, cap_s=args.cap, rounds=args.rounds)

    def one_round() -> None:
        rd: dict[str, dict[str, Any]] = {"plain": {}, "ours": {}}
        for mode in MODES:  # plain and job rows side by side
            rd["plain"][mode] = peers.measure(PLAIN[mode], main, args.n, args.cap)
            rd["ours"][mode] = peers.measure(OURS[mode], main, args.n, args.cap)
        res["rounds"].append(rd)

    # worqr_py rounds spread over the run: first, between the peers, last
    cuts = [round(k * len(chosen) / max(1, args.rounds - 1)) for k in range(args.rounds)]
    for i in range(len(chosen) + 1):
        for _ in range(cuts.count(i)):
            one_round()
        if i < len(chosen):
            p = peers.measure(chosen[i], main, args.n, args.cap)
            p["mode"] = chosen[i].classes[0]
            res["peers"].append(p)
    print("[bench] round trips per job (MONITOR) ...", file=sys.stderr, flush=True)
    res["round_trips"] = [round_trips(main, c.variant, args.n) for c in OURS.values()]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000, help="jobs per measurement (10000)")
    ap.add_argument("--cap", type=float, default=10.0, help="seconds of processing at most (10)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the worqr_py rows (3)")
    names = sorted({c.name for c in PEERS})
    ap.add_argument(
        "--only", help="comma-separated peers (worqr_py always runs): " + ",".join(names)
    )
    ap.add_argument("--out", type=Path, default=HERE / "jobs_results.md", help="markdown file")
    args = ap.parse_args()
    args.rounds = max(1, args.rounds)
    t0 = time.monotonic()
    with peers.throwaway_server() as url:
        res = measure(args, url)
    res["meta"]["wall_s"] = round(time.monotonic() - t0, 1)
    text = render(res)
    print(text, end="")
    args.out.write_text(text)


if __name__ == "__main__":
    main()
