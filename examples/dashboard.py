"""The web dashboard (needs the web extra: pip install 'worqr_py[web]'): three queues, two
workers draining them, a dead letter with its error and a few jobs, shown by
``worqr_py.web.app`` served with uvicorn on localhost. It fetches the queues page and
/metrics once and ends; ``--serve`` keeps it up until Ctrl-C, ``--screenshot PATH`` saves a
picture of the page from a real browser (Playwright with Debian's chromium) and ends.

python examples/dashboard.py [--serve | --screenshot docs/dashboard.png]
    # uses $REDIS_URL, else starts a throwaway redis-server
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.request
import uuid

import uvicorn

from worqr_py import Process, Retry, Worqr
from worqr_py.embedded import EmbeddedRedis, free_port, scrub
from worqr_py.web import app

TOKEN = "an-example-token"  # in real use: a secret from the environment, never a constant
CHROMIUM = os.environ.get("WORQR_CHROMIUM", "/usr/lib/chromium/chromium")


def resize(width: int) -> str:
    return f"resized to {width}"


def handle(p: Process) -> None:
    time.sleep(0.05)  # some work, so that the queues drain visibly
    if p.task == "report-7":
        raise ValueError("the template report.html is missing")


def screenshot(base: str, path: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 560})
        page.goto(f"{base}/queues")
        page.wait_for_selector("tr[data-queue='emails']")
        page.screenshot(path=path, full_page=True)
        browser.close()


def demo(url: str, prefix: str, mode: str, path: str) -> int:
    client = Worqr(url, prefix=prefix)
    workers = [Worqr(url, prefix=prefix) for _ in range(2)]
    client.enqueue("emails", [f"welcome-{i}" for i in range(120)])
    client.enqueue("reports", [f"report-{i}" for i in range(10)])
    client.enqueue("thumbnails", [f"img-{i}.png" for i in range(40)], delay=600)
    jobs = [client.submit("jobs", "resize", w) for w in (64, 128, 256)]
    runners = [
        threading.Thread(
            target=workers[0].run,
            args=(["emails", "reports"], handle),
            kwargs={"retry": Retry(max=0)},
        ),
        threading.Thread(target=workers[1].run_jobs, args=({"resize": resize}, "jobs")),
    ]
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app(client, token=TOKEN), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = threading.Thread(target=server.run)
    for t in (*runners, serving):
        t.start()
    base = f"http://127.0.0.1:{port}"
    try:
        while not server.started:
            time.sleep(0.05)
        print("results:", [j.result(timeout=30) for j in jobs])
        while client.count_queue("emails") > 60:  # half drained: the chart has a slope
            time.sleep(0.05)
        if mode == "serve":
            print(f"dashboard on {base}/ (token {TOKEN!r}); Ctrl-C to stop")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        elif mode == "screenshot":
            screenshot(base, path)
            print("saved", path)
        page = urllib.request.urlopen(f"{base}/queues").read().decode()
        metrics = urllib.request.urlopen(f"{base}/metrics").read().decode()
        print("queues page shows emails:", 'data-queue="emails"' in page)
        print("metrics:", next(line for line in metrics.splitlines() if 'kind="done"' in line))
        ok = 'data-queue="reports"' in page and "worqr_queue_length" in metrics
    finally:
        for w in workers:
            w.shutdown()
        server.should_exit = True
        for t in (*runners, serving):
            t.join(30)
        for w in (*workers, client):
            w.close()
    return 0 if ok else 1


def main(url: str, mode: str, path: str) -> int:
    prefix = f"dash-{uuid.uuid4().hex[:8]}"  # a namespace of our own on your Redis
    try:
        return demo(url, prefix, mode, path)
    finally:
        scrub(url, prefix)  # every key of that prefix: nothing left on your Redis


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--serve", action="store_true", help="keep serving until Ctrl-C")
    group.add_argument("--screenshot", metavar="PATH", help="save a picture of the page")
    args = ap.parse_args()
    mode = "serve" if args.serve else "screenshot" if args.screenshot else "once"
    if os.environ.get("REDIS_URL"):
        sys.exit(main(os.environ["REDIS_URL"], mode, args.screenshot or ""))
    with EmbeddedRedis() as server:
        sys.exit(main(server.url, mode, args.screenshot or ""))
