"""Producer and consumer: the runtime (`run`) takes work when notified, finishes each task when
the handler returns and puts it back at the front when it raises.

    python examples/producer_consumer.py   # uses $REDIS_URL, else starts a throwaway redis-server
"""

from __future__ import annotations

import os
import sys
import threading
import uuid

from worqr_py import Process, Worqr
from worqr_py.embedded import EmbeddedRedis, scrub


def orders(url: str, prefix: str) -> int:
    shipped: list[str] = []
    lock = threading.Lock()

    def ship(p: Process) -> None:  # the handler: any exception returns the task to the front
        if p.task == "order-7" and p.deliveries == 1:
            raise RuntimeError("courier unavailable, try again")
        with lock:
            shipped.append(p.task)
            if len(shipped) == 20:
                consumer.shutdown()  # as SIGTERM would: finish in-flight work, then stop

    consumer = Worqr(url, prefix=prefix)
    with Worqr(url, prefix=prefix) as producer:
        producer.enqueue("orders", [f"order-{i}" for i in range(20)])
        consumer.run("orders", ship, concurrency=4)  # blocks until shutdown()
        left = producer.count_queue("orders")
    consumer.close()
    print(f"shipped {len(shipped)} orders ({len(set(shipped))} distinct), {left} left")
    return 0 if sorted(shipped) == sorted(f"order-{i}" for i in range(20)) else 1


def main(url: str) -> int:
    prefix = f"orders-example-{uuid.uuid4().hex[:8]}"
    try:
        return orders(url, prefix)
    finally:
        scrub(url, prefix)  # every key of that prefix: nothing left on your Redis


if __name__ == "__main__":
    if os.environ.get("REDIS_URL"):
        sys.exit(main(os.environ["REDIS_URL"]))
    with EmbeddedRedis() as server:
        sys.exit(main(server.url))
