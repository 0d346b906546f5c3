"""worqr_py against a Redis in a Docker container (testcontainers), when a Docker engine is
reachable; skipped, with the reason, otherwise. The rest of the suite starts local
redis-server processes, which it can also SIGKILL, pause and restart."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

IMAGE = "redis:7-alpine"


def docker_unreachable() -> str | None:
    """Why no Docker engine can be used from here, or None if one answers a ping."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # no package, no socket, no permission, no answer: all mean skip
        return f"no Docker engine reachable ({type(exc).__name__}: {exc})"[:300]
    return None


@pytest.fixture(scope="module")
def container_url() -> Iterator[str]:
    """The URL of a Redis running in a container, stopped after this module."""
    why = docker_unreachable()
    if why:
        pytest.skip(why)
    try:
        from testcontainers.community.redis import RedisContainer
    except ImportError:  # testcontainers before 4.14
        from testcontainers.redis import RedisContainer
    container = RedisContainer(IMAGE)
    try:
        container.start()
    except Exception as exc:  # e.g. the image cannot be pulled
        pytest.skip(f"could not start {IMAGE} in Docker: {exc}"[:300])
    try:
        host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
        yield f"redis://{host}:{port}/0"
    finally:
        container.stop()


SLOW = {"heartbeat_interval": 0.2, "heartbeat_ttl": 5.0}  # no self-fencing on a busy machine


def test_enqueue_dequeue_finish(make: Any, container_url: str) -> None:
    w = make(url=container_url, **SLOW)
    w.start_worker()
    w.start_work("jobs")
    assert w.enqueue("jobs", ["a", "b"]) == 2
    p = w.dequeue("jobs")
    assert p.task == "a" and p.deliveries == 1
    assert w.finish_process(p.id) is True
    assert w.get_tasks("jobs") == ["b"] and w.processes == []


def test_a_peer_reclaims_a_failed_worker_s_task_at_the_front(make: Any, container_url: str) -> None:
    a, b = make(url=container_url, **SLOW), make(url=container_url, **SLOW)
    for w in (a, b):
        w.start_worker()
        w.start_work("jobs")
    a.enqueue("jobs", ["first", "second"])
    held = a.dequeue("jobs")
    assert held.task == "first"
    assert b.fail_worker(a.worker_id) == 1  # as a peer does for a dead worker
    assert a.finish_process(held.id) is False  # fenced: no longer a's
    again = b.dequeue("jobs")
    assert (again.task, again.deliveries) == ("first", 2)  # back at the front, counted
    assert b.finish_process(again.id) is True
    assert b.get_tasks("jobs") == ["second"]
