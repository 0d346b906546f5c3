"""Recovery time: from SIGKILL of a worker holding a task to that task back in its queue,
with the default settings (heartbeat 1 s, TTL 3 s) and short ones (0.2 s, 0.6 s).

    python bench/recovery.py [--trials 5]

A holder process takes one task and is SIGKILLed; one live peer supervises (as in any
deployment with more than one worker). Each trial uses a fresh prefix on one throwaway
redis-server. Prints min / median / max and the bound the design gives (TTL + interval).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import uuid

from worqr_py import Worqr
from worqr_py.embedded import EmbeddedRedis

HOLDER = """
import sys, time
from worqr_py import Worqr
url, prefix, interval, ttl = sys.argv[1:5]
w = Worqr(url, prefix=prefix, heartbeat_interval=float(interval), heartbeat_ttl=float(ttl))
w.start_worker(); w.start_work("q"); p = w.dequeue("q")
print(p.task, flush=True)
time.sleep(3600)
"""


def trial(url: str, interval: float, ttl: float) -> float:
    prefix = f"recovery-{uuid.uuid4().hex[:8]}"
    with Worqr(url, prefix=prefix, heartbeat_interval=interval, heartbeat_ttl=ttl) as peer:
        peer.start_worker()
        peer.enqueue("q", "task")
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, url, prefix, str(interval), str(ttl)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None and holder.stdout.readline().strip() == "task"
        time.sleep(interval * 1.5)  # let it beat at least once, as a worker in service has
        holder.kill()
        killed = time.monotonic()
        holder.wait()
        while peer.count_queue("q") == 0:
            if time.monotonic() - killed > ttl * 5:
                raise RuntimeError("the task did not come back")
            time.sleep(0.005)
        return time.monotonic() - killed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    print("| settings (interval / ttl) | trials | min | median | max | bound ttl+interval |")
    print("| --- | --- | --- | --- | --- | --- |")
    with EmbeddedRedis() as server:
        for interval, ttl in ((1.0, 3.0), (0.2, 0.6)):
            times = [trial(server.url, interval, ttl) for _ in range(args.trials)]
            print(
                f"| {interval:g} s / {ttl:g} s | {len(times)} | {min(times):.2f} s | "
                f"{statistics.median(times):.2f} s | {max(times):.2f} s | "
                f"{ttl + interval:.2f} s |"
            )


if __name__ == "__main__":
    main()
