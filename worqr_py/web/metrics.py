"""``/metrics`` in Prometheus' text format, read from Redis at scrape time (``queue_stats``
and ``overview``), so every dashboard process reports the same figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..core.model import Overview, QueueStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Scrape(Collector):
    def __init__(self, stats: list[QueueStats], overview: Overview) -> None:
        self.stats, self.overview = stats, overview

    def collect(self) -> Iterator[Metric]:
        gauges: dict[str, tuple[str, Callable[[QueueStats], int]]] = {
            "length": ("tasks queued", lambda s: s.length),
            "delayed": ("tasks delayed", lambda s: s.delayed),
            "in_process": ("tasks held by workers", lambda s: s.in_process),
            "dead": ("dead letters", lambda s: s.dead),
            "workers": ("workers working on the queue", lambda s: len(s.workers)),
        }
        for name, (what, value) in gauges.items():
            g = GaugeMetricFamily(f"worqr_queue_{name}", f"Per queue: {what}.", labels=["queue"])
            for s in self.stats:
                g.add_metric([s.name], value(s))
            yield g
        c = CounterMetricFamily(
            "worqr_tasks",
            "Per queue and kind, since its counters began: enqueued, done, failed, retried.",
            labels=["queue", "kind"],
        )
        for s in self.stats:
            for kind in ("enqueued", "done", "failed", "retried"):
                c.add_metric([s.name, kind], getattr(s.counts, kind))
        yield c
        alive = sum(1 for w in self.overview.workers if w.alive)
        yield GaugeMetricFamily("worqr_workers_alive", "Registered workers alive.", value=alive)
        dead = len(self.overview.workers) - alive
        yield GaugeMetricFamily(
            "worqr_workers_dead", "Registered workers whose heartbeat is gone.", value=dead
        )


def render(stats: list[QueueStats], overview: Overview) -> bytes:
    """The exposition of these figures (a registry of its own: nothing global is touched)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(stats, overview))
    return generate_latest(registry)
