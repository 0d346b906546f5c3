"""What only the asyncio driver has: coroutine handlers, tasks cancelled on close, mixing
with the sync driver. (Every other behaviour test already runs against both drivers.)"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from typing import Any

from worqr_py import AsyncWorqr, WorkerFailed, Worqr, WorqrError

from .conftest import FAST


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_a_raising_coroutine_handler_goes_to_error_and_the_listener_lives(
    server: Any, prefix: str
) -> None:
    async def main() -> None:
        async with AsyncWorqr(server.url, prefix=prefix) as w:
            errors: list[BaseException] = []
            got = asyncio.Event()
            w.events.on("error", errors.append)

            async def bad(kind: str, msg: str) -> None:
                raise RuntimeError("coroutine handler bug")

            async def good(kind: str, msg: str) -> None:
                if msg == "2":
                    got.set()

            await w.on("q", bad)
            await w.on("q", good)
            await w.enqueue("q", "one")
            await w.enqueue("q", ["two", "three"])
            await asyncio.wait_for(got.wait(), 5)
            assert errors and isinstance(errors[0], RuntimeError)

    run(main())


def test_close_while_a_dequeue_is_in_flight_loses_nothing(server: Any, prefix: str) -> None:
    async def once(i: int) -> None:
        p = f"{prefix}-{i}"
        w = AsyncWorqr(server.url, prefix=p, **FAST)
        await w.start_worker()
        await w.start_work("q")
        await w.enqueue("q", ["a", "b", "c"])
        taking = asyncio.create_task(w.dequeue("q"))
        for _ in range(i % 4):
            await asyncio.sleep(0)  # vary how far the dequeue has got
        await w.close()
        with contextlib.suppress(WorkerFailed, WorqrError):
            await taking
        async with AsyncWorqr(server.url, prefix=p) as check:
            assert await check.get_tasks("q") == ["a", "b", "c"]
            snap = await check.snapshot(["q"])
            assert not [k for k in snap if ":p:" in k]  # no process record left behind

    async def main() -> None:
        for i in range(20):
            await once(i)

    run(main())


def test_a_sync_and_an_async_worker_share_a_queue_each_task_done_once(
    server: Any, prefix: str
) -> None:
    tasks = [f"t{i}" for i in range(400)]
    done: Counter[str] = Counter()
    lock = threading.Lock()
    all_done = threading.Event()

    def record(task: str) -> None:
        with lock:
            done[task] += 1
            if sum(done.values()) >= len(tasks):
                all_done.set()

    sync = Worqr(server.url, prefix=prefix, **FAST)

    def sync_handler(kind: str, msg: str) -> None:
        while kind == "work" and (p := sync.dequeue("q")) is not None:
            if sync.finish_process(p.id):
                record(p.task)

    sync.on("q", sync_handler)
    sync.start_worker()
    sync.start_work("q")

    async def main() -> Counter[str]:
        by: Counter[str] = Counter()
        async with AsyncWorqr(server.url, prefix=prefix, **FAST) as aw:

            async def handler(kind: str, msg: str) -> None:
                while kind == "work" and (p := await aw.dequeue("q")) is not None:
                    await asyncio.sleep(0)
                    if await aw.finish_process(p.id):
                        record(p.task)
                        by["async"] += 1

            await aw.on("q", handler)
            await aw.start_worker()
            await aw.start_work("q")
            for i in range(0, len(tasks), 50):
                await aw.enqueue("q", tasks[i : i + 50])
            await asyncio.get_running_loop().run_in_executor(None, all_done.wait, 20)
        return by

    try:
        by = run(main())
    finally:
        sync.close()
    assert done == Counter(tasks)  # every task exactly once
    assert 0 < by["async"] < len(tasks)  # and both workers took part


def test_shutdown_cancels_a_long_handler_and_returns_its_process(server: Any, prefix: str) -> None:
    async def main() -> None:
        w = AsyncWorqr(server.url, prefix=prefix, **FAST)
        started, cancelled = asyncio.Event(), asyncio.Event()

        async def long_handler(kind: str, msg: str) -> None:
            if kind == "work" and (p := await w.dequeue("q")) is not None:
                started.set()
                try:
                    await asyncio.sleep(3600)  # a long job, never finished
                except asyncio.CancelledError:
                    cancelled.set()
                    raise
                await w.finish_process(p.id)

        await w.on("q", long_handler)
        await w.start_worker()
        await w.start_work("q")
        await w.enqueue("q", ["long", "next"])
        await asyncio.wait_for(started.wait(), 5)
        await w.close()
        await asyncio.wait_for(cancelled.wait(), 5)
        async with AsyncWorqr(server.url, prefix=prefix) as check:
            assert await check.get_tasks("q") == ["long", "next"]
            assert not await check.get_workers()
            assert not [k for k in await check.snapshot(["q"]) if ":p:" in k]

    run(main())
