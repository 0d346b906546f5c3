"""The web dashboard (worqr_py.web) in a real browser: Debian's chromium driven by
Playwright, against a real redis-server, running workers and a dashboard served by uvicorn.
The page shows a queue draining and a SIGKILLed worker's task being reclaimed without a
reload, a dead letter requeued by clicking, actions refused without the token or its CSRF
field, and task and queue names holding markup shown as text. Also /metrics, the CLI and
mounting under a path (over plain HTTP)."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright
from starlette.applications import Starlette
from starlette.routing import Mount

from worqr_py import Worqr
from worqr_py.embedded import free_port
from worqr_py.tools.cli_web import parse_bind
from worqr_py.web import app

from .conftest import FAST
from .job_worker import spawn
from .support import running, task_log, wait_for

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("WORQR_CHROMIUM", "/usr/lib/chromium/chromium")
TOKEN = "correct-horse-battery"
LIVE = 15_000  # ms a live update may take on a loaded machine (the page asks every second)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    pg = context.new_page()
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.dialogs = dialogs  # type: ignore[attr-defined]
    yield pg
    context.close()


@contextmanager
def serve(asgi: Any) -> Iterator[str]:
    """``asgi`` served by uvicorn on a free port in a thread, for the ``with`` block."""
    port = free_port()
    config = uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-dashboard", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), timeout=10, what="uvicorn")
        assert thread.is_alive(), "the dashboard did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive(), "the dashboard did not stop"


@pytest.fixture
def client(server: Any, prefix: str) -> Iterator[Worqr]:
    w = Worqr(server.url, prefix=prefix, **FAST)
    yield w
    w.close()


def login(page: Page, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=token]", TOKEN)
    page.click("form[action$='/login'] button")
    expect(page.locator("header")).to_contain_text("log out")


def mark(page: Page) -> None:
    """Mark the loaded document: a reload would lose the mark (``unreloaded``)."""
    page.evaluate("window.__worqr_mark = 1")


def unreloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__worqr_mark === 1"))


def test_the_page_shows_a_queue_draining(
    page: Page, client: Worqr, server: Any, prefix: str
) -> None:
    client.enqueue("drain", [f"t{i}" for i in range(40)])
    with serve(app(client)) as base:
        page.goto(f"{base}/queues")
        row = page.locator("tr[data-queue='drain']")
        expect(row.locator("td.length")).to_have_text("40")
        mark(page)
        worker = Worqr(server.url, prefix=prefix, **FAST)
        done, handler = task_log()
        with running(worker, "drain", handler):
            wait_for(lambda: len(done) == 40, timeout=30, what="the queue drained")
            expect(row.locator("td.length")).to_have_text("0", timeout=LIVE)
        worker.close()
        assert unreloaded(page), "the page was reloaded: not a live update"
        page.goto(f"{base}/queue?name=drain")
        expect(page.locator("p.figures")).to_contain_text("40 done")


def test_a_sigkilled_worker_s_task_is_seen_reclaimed(
    page: Page, client: Worqr, server: Any, prefix: str
) -> None:
    interval, ttl = 0.2, 0.6
    job = client.submit("held", "hold")
    proc = spawn(server.url, prefix, "held", interval, ttl)
    try:
        with serve(app(client)) as base:
            wait_for(lambda: client.get_job(job.id).status == "started", timeout=30)
            victim = client.get_job(job.id).worker or ""
            page.goto(f"{base}/queue?name=held")
            expect(page.locator("b.in-process")).to_have_text("1")
            expect(page.locator("table.processes")).to_contain_text(victim.partition(".")[0])
            mark(page)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            peer = Worqr(server.url, prefix=prefix, heartbeat_interval=interval, heartbeat_ttl=ttl)
            peer.start_worker()  # a live peer working no queue: it reclaims the dead one
            try:
                expect(page.locator("b.in-process")).to_have_text("0", timeout=LIVE)
                expect(page.locator("b.length")).to_have_text("1", timeout=LIVE)
                assert unreloaded(page)
                page.goto(f"{base}/workers")
                expect(page.locator(f"tr[data-worker='{victim.partition('.')[0]}']")).to_have_count(
                    0
                )
            finally:
                peer.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def dead_letter(client: Worqr, queue: str, task: str) -> None:
    client.enqueue(queue, task)
    client.start_worker()
    client.start_work(queue)
    p = client.dequeue(queue)
    assert p is not None and client.dead_letter_process(p.id, error=ValueError("it broke"))


def test_a_dead_letter_is_requeued_by_clicking(
    page: Page, client: Worqr, caplog: pytest.LogCaptureFixture
) -> None:
    dead_letter(client, "mail", "send 42")
    with serve(app(client, token=TOKEN)) as base:
        login(page, base)
        page.goto(f"{base}/queue?name=mail")
        row = page.locator("table.dead-letters tr", has_text="send 42")
        expect(row).to_contain_text("ValueError: it broke")
        with caplog.at_level(logging.INFO, logger="worqr_py.web"):
            row.locator("button[data-action='requeue-dead']").click()
            expect(page.locator("b.dead")).to_have_text("0")
        expect(page.locator("table.tasks")).to_contain_text("send 42")
    assert client.get_dead("mail") == []
    assert client.get_tasks("mail") == ["send 42"]
    assert any(
        "requeue-dead" in r.getMessage() and "send 42" in r.getMessage() for r in caplog.records
    )


def post(url: str, fields: dict[str, str], cookie: str = "") -> int:
    body = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in fields.items()).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if cookie:
        request.add_header("Cookie", cookie)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        return int(opener.open(request).status)
    except urllib.error.HTTPError as exc:
        return exc.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def test_actions_are_refused_without_the_token(
    page: Page, client: Worqr, caplog: pytest.LogCaptureFixture
) -> None:
    dead_letter(client, "keep", "precious")
    with serve(app(client)) as base:  # read-only: no token
        page.goto(f"{base}/queue?name=keep")
        expect(page.locator("header .badge")).to_have_text("read-only")
        expect(page.locator("table.dead-letters")).to_contain_text("precious")
        assert page.locator("button.act").count() == 0
        response = page.request.post(
            f"{base}/actions/purge-dead", form={"queue": "keep", "csrf": "x"}
        )
        assert response.status == 403 and "read-only" in response.text()
    with serve(app(client, token=TOKEN)) as base:
        page.goto(f"{base}/queue?name=keep")
        assert page.locator("button.act").count() == 0  # not logged in: nothing to click
        assert post(f"{base}/actions/purge-dead", {"queue": "keep"}) == 403
        assert post(f"{base}/login", {"token": "wrong-token-123"}) == 403
        login(page, base)
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
        fields = {"queue": "keep", "csrf": "forged"}
        with caplog.at_level(logging.WARNING, logger="worqr_py.web"):
            assert post(f"{base}/actions/purge-dead", fields, cookie) == 403  # CSRF field wrong
        page.goto(f"{base}/queue?name=keep")
        csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
        assert post(f"{base}/actions/purge-dead", {"queue": "keep", "csrf": csrf}) == 403
    assert [d.task for d in client.get_dead("keep")] == ["precious"]  # nothing was done
    assert any("refused" in r.getMessage() for r in caplog.records)


def test_markup_in_names_is_shown_as_text(page: Page, client: Worqr) -> None:
    script = "<script>window.__pwned = 1; alert('task')</script>"
    queue = "<img src=x onerror=\"window.__pwned = 2; alert('queue')\">"
    dead_letter(client, queue, "<i>x</i>")
    client.enqueue(queue, [script, "<b>bold</b>"])
    with serve(app(client, token=TOKEN)) as base:
        login(page, base)
        page.goto(f"{base}/queues")
        expect(page.locator("table.queues")).to_contain_text(queue)
        page.get_by_role("link", name=queue).click()
        expect(page.locator("h1 .name")).to_have_text(queue)
        expect(page.locator("table.tasks")).to_contain_text(script)
        expect(page.locator("table.tasks")).to_contain_text("<b>bold</b>")
        expect(page.locator("table.dead-letters")).to_contain_text("<i>x</i>")
        page.wait_for_timeout(1500)  # a live refresh (every second) renders them again
        expect(page.locator("table.tasks")).to_contain_text(script)
        assert page.evaluate("window.__pwned") is None
        assert page.locator("main script, main img, main b:text('bold')").count() == 0
        assert page.dialogs == []  # type: ignore[attr-defined]
        page.goto(f"{base}/workers")
        expect(page.locator("table.workers")).to_contain_text(queue)
        assert page.evaluate("window.__pwned") is None


def test_the_jobs_page_shows_status_result_and_error(
    page: Page, client: Worqr, server: Any, prefix: str
) -> None:
    ok = client.submit("jobs", "add", 2, 3)
    bad = client.submit("jobs", "boom", "<no>")
    later = client.submit("jobs", "add", 1, 1, delay=3600)
    from .job_worker import FUNCTIONS

    worker = Worqr(server.url, prefix=prefix, **FAST)
    t = threading.Thread(target=worker.run_jobs, args=(FUNCTIONS, "jobs"), daemon=True)
    t.start()
    try:
        client.wait_for_result(ok.id, 30)
        wait_for(lambda: client.get_job(bad.id).status == "failed", timeout=30)
    finally:
        worker.shutdown()
        t.join(15)
        worker.close()
    assert not t.is_alive()
    with serve(app(client, token=TOKEN)) as base:
        login(page, base)
        page.goto(f"{base}/jobs?queue=jobs")
        expect(page.locator(f"tr[data-job='{ok.id}'] td.status")).to_have_text("finished")
        expect(page.locator(f"tr[data-job='{ok.id}'] td.result")).to_have_text("5")
        expect(page.locator(f"tr[data-job='{bad.id}'] td.result")).to_contain_text("<no>")
        expect(page.locator(f"tr[data-job='{later.id}'] td.status")).to_have_text("scheduled")
        page.locator(f"tr[data-job='{later.id}'] button[data-action='cancel-job']").click()
        expect(page.locator(f"tr[data-job='{later.id}'] td.status")).to_have_text("cancelled")
    assert client.get_job(later.id).status == "cancelled"  # type: ignore[union-attr]


def test_metrics_in_prometheus_format(client: Worqr) -> None:
    client.enqueue("m", ["a", "b", "c"])
    client.start_worker()
    client.start_work("m")
    p = client.dequeue("m")
    assert p is not None and client.finish_process(p.id)
    with serve(app(client)) as base:
        text = urllib.request.urlopen(f"{base}/metrics").read().decode()
    values = dict(re.findall(r"^(worqr_\S+) (\S+)$", text, re.M))
    assert float(values['worqr_queue_length{queue="m"}']) == 2
    assert float(values['worqr_tasks_total{kind="enqueued",queue="m"}']) == 3
    assert float(values['worqr_tasks_total{kind="done",queue="m"}']) == 1
    assert float(values['worqr_queue_workers{queue="m"}']) == 1
    assert float(values["worqr_workers_alive"]) == 1


def test_mounted_under_a_path_every_link_keeps_it(client: Worqr) -> None:
    client.enqueue("sub", "t")
    outer = Starlette(routes=[Mount("/ops/worqr", app(client))])
    with serve(outer) as base:
        html = urllib.request.urlopen(f"{base}/ops/worqr/queues").read().decode()
        assert 'href="/ops/worqr/queue?name=sub"' in html
        assert 'src="/ops/worqr/static/htmx.min.js"' in html
        assert urllib.request.urlopen(f"{base}/ops/worqr/static/htmx.min.js").status == 200


def test_the_cli_serves_an_asyncio_client_on_localhost(server: Any, prefix: str) -> None:
    Worqr(server.url, prefix=prefix).enqueue("cli", ["x", "y"])
    port = free_port()
    env = {**os.environ, "WORQR_DASHBOARD_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worqr_py",
            "--url",
            server.url,
            "--prefix",
            prefix,
            "dashboard",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def page_text() -> str:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/queues").read().decode()
            except OSError:
                return ""

        html = wait_for(page_text, timeout=30, what="the CLI's dashboard")
        assert 'data-queue="cli"' in html and "log in to act" in html
        assert post(f"http://127.0.0.1:{port}/actions/delete-queue", {"queue": "cli"}) == 403
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=5)
    assert f"http://127.0.0.1:{port}/" in err and "actions allowed" in err
    assert TOKEN not in err  # never printed


def test_bad_bind_and_token_are_refused() -> None:
    for bad in ("8900", "host:", ":80", "h:0", "h:70000", "h:x"):
        with pytest.raises(ValueError, match="--bind"):
            parse_bind(bad)
    assert parse_bind("[::1]:8900") == ("::1", 8900)
    with pytest.raises(ValueError, match="token"):
        app(object(), token="short")


class PickleText:
    """A serializer of one's own (pickle as base64 text): values JSON has no word for."""

    def dumps(self, obj: Any) -> str:
        import base64
        import pickle

        return base64.b64encode(pickle.dumps(obj)).decode()

    def loads(self, s: str) -> Any:
        import base64
        import pickle

        return pickle.loads(base64.b64decode(s))


def test_jobs_of_a_serializer_of_your_own_and_keyword_arguments_are_shown(
    page: Page, server: Any, prefix: str
) -> None:
    import datetime

    w = Worqr(server.url, prefix=prefix, serializer=PickleText())
    try:
        job = w.submit("pj", "report", {1, 2}, day=datetime.date(2026, 11, 24))
        with serve(app(w)) as base:
            page.goto(f"{base}/jobs?queue=pj")
            call = page.locator(f"tr[data-job='{job.id}'] td.call")
            expect(call).to_have_text("report({1, 2}, day=datetime.date(2026, 11, 24))")
    finally:
        w.close()


def test_a_page_says_when_redis_is_unreachable(page: Page, servers: Any, prefix: str) -> None:
    """The server stops under an open page: its live part says so (503, not a blank 500),
    a full page too; once the server is back, the figures return."""
    s = servers()
    w = Worqr(s.url, prefix=prefix, retry_timeout=1)
    try:
        w.enqueue("gone", ["a", "b"])
        with serve(app(w)) as base:
            page.goto(f"{base}/queues")
            expect(page.locator("tr[data-queue='gone'] td.length")).to_have_text("2")
            s.kill()
            expect(page.locator("#live")).to_contain_text("Redis unreachable", timeout=LIVE)
            status = urllib.request.urlopen  # a full page: the same, with the layout
            try:
                status(f"{base}/queues")
                code = 200
            except urllib.error.HTTPError as exc:
                code = exc.code
            assert code == 503
            try:  # and /metrics: a failed scrape, one line (a review of 0.7.3: a 500)
                status(f"{base}/metrics")
                code, body = 200, ""
            except urllib.error.HTTPError as exc:
                code, body = exc.code, exc.read().decode()
            assert code == 503 and body.startswith("Redis unreachable") and body.count("\n") == 1
            s.start()
            w.enqueue("gone", "c")  # the restart lost a and b (no persistence)
            expect(page.locator("tr[data-queue='gone'] td.length")).to_have_text("1", timeout=LIVE)
    finally:
        w.close()


def test_odd_cookies_and_fields_are_refused_not_crashed(client: Worqr) -> None:
    with serve(app(client, token=TOKEN)) as base:
        request = urllib.request.Request(f"{base}/queues")
        request.add_header("Cookie", "worqr_session=abc.\u00e9".encode().decode("latin-1"))
        assert urllib.request.urlopen(request).status == 200  # not logged in, not a 500
        assert post(f"{base}/actions/purge-dead", {"queue": "q", "csrf": "\u00e9"}) == 403
        assert post(f"{base}/login", {"token": "\u00e9" * 10}) == 403


def test_a_session_ends_twelve_hours_after_its_login() -> None:
    from worqr_py.web.auth import SESSION_S, Guard

    guard = Guard(TOKEN)
    cookie = guard.login(TOKEN, now=1_000_000)
    assert cookie is not None and guard.login("not the token") is None
    nonce = guard.session(cookie, now=1_000_000 + SESSION_S - 1)
    assert nonce is not None and guard.allows(cookie, guard.csrf(nonce)) is False  # expired now
    assert guard.session(cookie, now=1_000_000 + SESSION_S) is None
    assert guard.session(cookie.replace(".", "0."), now=1_000_000) is None  # tampered
    fresh = guard.login(TOKEN)
    assert fresh is not None and guard.allows(fresh, guard.csrf(guard.session(fresh) or ""))
    assert Guard("another-token").session(fresh) is None
