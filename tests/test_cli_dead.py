"""``worqr dead QUEUE``: each dead letter on one line with why it died where that was recorded
(the rendering, pure), then the command run as a user runs it (a subprocess) on a real
redis-server, with dead letters made by the library."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from worqr_py import DeadLetter, Worqr
from worqr_py.core.keys import Keys
from worqr_py.tools.views import REASON_CHARS, dead_line

from .test_cli import ok, worqr
from .test_cli_delayed import ISO, server_time

WHEN = re.compile(rf"\((\d+) deliver(?:y|ies), ({ISO})\)")


def test_dead_line_shows_the_task_then_its_reason_deliveries_and_when() -> None:
    at = datetime.fromisoformat("2026-11-24T03:10:05.250+00:00").timestamp()
    full = DeadLetter("t", "ValueError", "boom 7", "Traceback ...", 3, at)
    assert dead_line(full) == "t  ValueError: boom 7  (3 deliveries, 2026-11-24T03:10:05.250+00:00)"
    given = DeadLetter("a b", "", "bad input", None, 1, at)
    assert dead_line(given) == "a b  bad input  (1 delivery, 2026-11-24T03:10:05.250+00:00)"
    bare = DeadLetter("t", "myapp.Timeout", "", "Traceback ...", 2, at)
    assert dead_line(bare).startswith("t  myapp.Timeout  (2 deliveries, ")
    assert dead_line(DeadLetter("t")) == "t"  # no reason recorded: as before
    assert dead_line(DeadLetter("line\none")) == "'line\\none'"
    assert dead_line(DeadLetter("")) == "''"


def test_dead_line_keeps_a_long_or_multi_line_message_on_one_line() -> None:
    two = dead_line(DeadLetter("t", "KeyError", "'a'\n\tand more", None, 5, 0.0))
    assert two == "t  KeyError: 'a'\\n\\tand more  (5 deliveries, 1970-01-01T00:00:00.000+00:00)"
    long = dead_line(DeadLetter("t", "E", "x" * 5000, None, 1, 0.0))
    reason = long.split("  ")[1]
    assert len(reason) == REASON_CHARS and reason == "E: " + "x" * (REASON_CHARS - 6) + "..."
    assert "\n" not in long


def make_dead(server: Any, prefix: str) -> None:
    """In "jobs": "boom" (a handler's exception, 2 deliveries), "given" (a message), "plain"
    (no reason), and "multi\\nline" (a multi-line message), oldest first."""
    with Worqr(server.url, prefix=prefix, heartbeat_interval=0.2, heartbeat_ttl=30) as w:
        w.start_worker()
        w.start_work("jobs")
        w.enqueue("jobs", ["boom", "given", "plain", "multi\nline"])
        p = w.dequeue("jobs")
        assert w.stop_process(p.id) is True  # back to the front: a second delivery
        p = w.dequeue("jobs")
        try:
            raise ValueError("boom 7")
        except ValueError as exc:
            assert w.dead_letter_process(p.id, error=exc) is True
        assert w.dead_letter_process(w.dequeue("jobs").id, error="bad input") is True
        assert w.dead_letter_process(w.dequeue("jobs").id) is True
        p = w.dequeue("jobs")
        assert w.dead_letter_process(p.id, error=RuntimeError("first\nsecond")) is True


def test_dead_lists_each_dead_letter_with_its_reason(server: Any, prefix: str) -> None:
    before = server_time(server)
    make_dead(server, prefix)
    after = server_time(server)
    lines = ok(worqr(server, prefix, "dead", "jobs")).splitlines()
    assert len(lines) == 4, lines
    parsed = []
    for line in lines:
        m = WHEN.search(line)
        if m:
            assert m.end() == len(line), line
            assert before - 0.01 <= datetime.fromisoformat(m[2]).timestamp() <= after + 0.01
            parsed.append((line[: m.start()], int(m[1])))
        else:
            parsed.append((line, None))
    assert parsed == [
        ("boom  ValueError: boom 7  ", 2),
        ("given  bad input  ", 1),
        ("plain", None),
        ("'multi\\nline'  RuntimeError: first\\nsecond  ", 1),
    ]


def test_dead_requeue_and_purge_drop_the_reasons_they_move(
    server: Any, r: Any, prefix: str
) -> None:
    make_dead(server, prefix)
    reasons = Keys(prefix).queue("jobs").dead_reasons
    out = ok(worqr(server, prefix, "dead", "jobs", "--requeue", "--task", "boom"))
    assert out == "requeued 1\n"
    assert not r.hexists(reasons, "boom")
    lines = ok(worqr(server, prefix, "dead", "jobs")).splitlines()
    assert [x.split("  ")[0] for x in lines] == ["given", "plain", "'multi\\nline'"]
    assert ok(worqr(server, prefix, "dead", "jobs", "--purge", "--task", "given")) == "purged 1\n"
    assert not r.hexists(reasons, "given")
    assert ok(worqr(server, prefix, "dead", "jobs", "--purge")) == "purged 2\n"
    assert not r.exists(reasons)
    assert ok(worqr(server, prefix, "dead", "jobs")) == ""
    assert ok(worqr(server, prefix, "tasks", "jobs")).split() == ["boom"]


def test_dead_on_an_unknown_queue_lists_nothing(server: Any, prefix: str) -> None:
    assert ok(worqr(server, prefix, "dead", "nothing")) == ""
