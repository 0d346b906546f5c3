"""Which redis-server the demo, the examples and the tests start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worqr_py.embedded import EmbeddedRedis, redis_binary, server_version
from worqr_py.errors import WorqrError


def fake_server(folder: Path, name: str, says: str) -> str:
    """An executable that answers ``--version`` as a server would (selection only)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{says}'\n")
    path.chmod(0o755)
    return str(path)


def test_the_newest_server_on_path_wins_wherever_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_server(tmp_path / "a", "redis-server", "Redis server v=6.2.14 sha=0 bits=64")
    newest = fake_server(tmp_path / "b", "valkey-server", "Valkey server v=8.0.1 bits=64")
    fake_server(tmp_path / "c", "redis-server", "Redis server v=7.0.15 bits=64")
    fake_server(tmp_path / "d", "redis-server", "not a server")
    folders = os.pathsep.join(str(tmp_path / x) for x in "abcd")
    monkeypatch.delenv("WORQR_REDIS_SERVER", raising=False)
    monkeypatch.setenv("PATH", folders)
    assert redis_binary() == newest and server_version(newest) == (8, 0, 1)


def test_equal_versions_keep_path_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = fake_server(tmp_path / "a", "redis-server", "Redis server v=7.0.15")
    fake_server(tmp_path / "b", "redis-server", "Redis server v=7.0.15")
    monkeypatch.delenv("WORQR_REDIS_SERVER", raising=False)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    assert redis_binary() == first


def test_worqr_redis_server_chooses_and_must_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = fake_server(tmp_path, "my-redis", "Redis server v=5.0.0")
    monkeypatch.setenv("WORQR_REDIS_SERVER", chosen)
    assert redis_binary() == chosen
    monkeypatch.setenv("WORQR_REDIS_SERVER", str(tmp_path / "missing"))
    with pytest.raises(WorqrError, match="WORQR_REDIS_SERVER"):
        redis_binary()


def test_a_server_that_never_answers_is_stopped_not_orphaned() -> None:
    server = EmbeddedRedis()
    with pytest.raises(WorqrError, match="did not start"):
        server.start(timeout=0.0)  # it cannot have answered yet
    assert server.proc is not None and server.proc.poll() is not None
    assert not os.path.exists(server.dir)
