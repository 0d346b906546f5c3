"""asyncio: a coroutine handler takes work when notified; tasks go back on shutdown.

python examples/async_worker.py   # uses $REDIS_URL, else starts a throwaway redis-server
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

from worqr_py import AsyncWorqr
from worqr_py.embedded import EmbeddedRedis, scrub


async def thumbnails(url: str, prefix: str) -> int:
    results: list[str] = []
    all_done = asyncio.Event()
    async with AsyncWorqr(url, prefix=prefix) as worker, AsyncWorqr(url, prefix=prefix) as producer:

        async def on_event(kind: str, message: str) -> None:
            if kind == "work":
                while (p := await worker.dequeue("thumbnails")) is not None:
                    await asyncio.sleep(0.001)  # resize the image...
                    if await worker.finish_process(p.id):
                        results.append(p.task)
                if len(results) == 50:
                    all_done.set()

        await worker.on("thumbnails", on_event)
        await worker.start_worker()
        await worker.start_work("thumbnails")
        await producer.enqueue("thumbnails", [f"img-{i}.png" for i in range(50)])
        await asyncio.wait_for(all_done.wait(), 30)
    print(f"processed {len(results)} of 50, each once: {len(set(results)) == len(results)}")
    return 0 if sorted(results) == sorted(f"img-{i}.png" for i in range(50)) else 1


async def main(url: str) -> int:
    prefix = f"async-example-{uuid.uuid4().hex[:8]}"
    try:
        return await thumbnails(url, prefix)
    finally:
        scrub(url, prefix)  # every key of that prefix: nothing left on your Redis


if __name__ == "__main__":
    if os.environ.get("REDIS_URL"):
        sys.exit(asyncio.run(main(os.environ["REDIS_URL"])))
    with EmbeddedRedis() as server:
        sys.exit(asyncio.run(main(server.url)))
