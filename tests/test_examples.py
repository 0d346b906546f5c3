"""Every example runs, as a user would run it, against the test server: none can rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def python(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run Python as a user would, from the repository root; fail with its output."""
    done = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_example_runs_to_success_and_leaves_no_key(example: Path, servers: Any) -> None:
    shared = servers()  # a Redis of its own, holding someone else's keys
    r = shared.client(decode_responses=True)
    r.set("someone-else:key", "v")
    r.sadd("{worqr}:queues", "theirs")
    python(str(example), env={**os.environ, "REDIS_URL": shared.url})
    assert r.dbsize() == 2, sorted(r.scan_iter(count=1000))
    assert r.get("someone-else:key") == "v" and r.smembers("{worqr}:queues") == {"theirs"}


def test_quickstart_starts_its_own_redis_without_redis_url() -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    done = python(str(ROOT / "examples" / "quickstart.py"), env=env)
    assert "done 200/200, twice: 0, left in queue: 0" in done.stdout


def test_the_readme_example_runs_and_leaves_its_queue_empty(server: Any) -> None:
    readme = (ROOT / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "redis://localhost:6379/0" in code
    code = code.replace("redis://localhost:6379/0", server.url)
    python("-c", code)
    from worqr_py import Worqr

    with Worqr(server.url) as w:  # the example's default prefix
        assert w.get_tasks("emails") == [] and w.get_workers() == []
