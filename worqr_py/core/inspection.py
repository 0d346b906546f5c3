"""A picture of everything a prefix holds in Redis, for diagrams and ``inspect``.

``StateOps.snapshot`` reads the registry (queues and workers sets) and, from it, every key
of every queue and worker: no KEYS, no SCAN, read only (one pipeline, not atomic). ``render``
draws a snapshot as ASCII boxes in the spirit of Worqr's README diagrams.
"""

from __future__ import annotations

from typing import Any

from . import validate as v
from .calls import Op, command, hash_reply, texts
from .keys import split_process_id
from .model import Counts, Minute, Overview, QueueInfo, QueueStats, WorkerInfo
from .queues import QueueOps

Snapshot = dict[str, tuple[str, Any]]  # key -> (type, value)


class StateOps(QueueOps):
    """snapshot and overview: what a prefix holds, for people and diagrams."""

    def overview(self) -> Op[Overview]:
        """Every queue with its length and workers, every registered worker with its
        heartbeat age and processes, from the registry sets. Reads only, not atomic."""
        k = self.keys
        reg = yield [command("SMEMBERS", k.queues), command("SMEMBERS", k.workers)]
        names, wids = sorted(texts(reg[0])), sorted(texts(reg[1]))
        reads = [command("LLEN", k.queue(q).tasks) for q in names]
        reads += [command("SMEMBERS", k.queue(q).workers) for q in names]
        for wid in wids:
            reads += [command("GET", k.heartbeat(wid)), command("PTTL", k.heartbeat(wid))]
            reads.append(command("SMEMBERS", k.working_queues(wid)))
        r = (yield reads) if reads else []
        n = len(names)
        worked = {wid: sorted(texts(r[2 * n + 3 * i + 2])) for i, wid in enumerate(wids)}
        procs = yield from self.in_flight(sorted(set(names).union(*worked.values())))
        queues = [QueueInfo(q, int(r[i]), sorted(texts(r[n + i]))) for i, q in enumerate(names)]
        workers = []
        for i, wid in enumerate(wids):
            ttl_ms, pttl = r[2 * n + 3 * i], int(r[2 * n + 3 * i + 1])
            permanent = ttl_ms is not None and pttl == -1
            ttl = int(texts([ttl_ms])[0]) / 1000 if ttl_ms is not None and pttl >= 0 else None
            age = None if ttl is None else max(0.0, ttl - pttl / 1000)
            mine = [p for p in procs if (split_process_id(p.id) or ("", "", ""))[1] == wid]
            workers.append(WorkerInfo(wid, age, ttl, worked[wid], mine, permanent))
        return Overview(queues, workers)

    def queue_stats(self, queues: list[str] | None = None) -> Op[list[QueueStats]]:
        """Each queue (``queues``, or every queue in ``{P}:queues``) at a glance: its length,
        delayed tasks, tasks in process (the sizes of its workers' records), dead letters,
        workers and counts since they began (P:{E}:m). Reads only, in two pipelines; not
        atomic: for dashboards and /metrics."""
        names = v.queue_names(queues)
        if names is None:
            names = sorted(texts((yield command("SMEMBERS", self.keys.queues))))
        ks = [self.keys.queue(q) for q in names]
        reads = []
        for k in ks:
            reads += [command("LLEN", k.tasks), command("ZCARD", k.delayed)]
            reads += [command("LLEN", k.dead), command("SMEMBERS", k.workers)]
            reads.append(command("HGETALL", k.metrics))
        r = (yield reads) if reads else []
        workers = [sorted(texts(r[5 * i + 3])) for i in range(len(ks))]
        pairs = [(k, w) for k, ws in zip(ks, workers, strict=True) for w in ws]
        held = [command("HLEN", k.processes(w)) for k, w in pairs]
        sizes = iter((yield held) if held else [])
        stats = []
        for i, (q, ws) in enumerate(zip(names, workers, strict=True)):
            in_process = sum(int(next(sizes)) for _ in ws)
            length, delayed, dead = int(r[5 * i]), int(r[5 * i + 1]), int(r[5 * i + 2])
            counts = Counts.of(hash_reply(r[5 * i + 4]))
            stats.append(QueueStats(q, length, delayed, in_process, dead, ws, counts))
        return stats

    def throughput(self, queue: str, minutes: int = 60) -> Op[list[Minute]]:
        """The queue's counts in each of its last ``minutes`` minutes (1 to 60), oldest first,
        the current minute last (P:{E}:m:<minute>, by the wall clock of the clients that
        counted). Reads only: one pipeline."""
        k = self._queue(queue)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 60:
            raise ValueError(f"minutes must be an int from 1 to 60, got {minutes!r}")
        now = int(self.wall() // 60)
        spans = list(range(now - minutes + 1, now + 1))
        replies = yield [command("HGETALL", k.metrics_minute(m)) for m in spans]
        return [
            Minute(m * 60, Counts.of(hash_reply(r))) for m, r in zip(spans, replies, strict=True)
        ]

    def snapshot(self, queues: list[str] | None = None) -> Op[Snapshot]:
        """Every key worqr_py holds under this prefix (plus those of ``queues``), found from
        the registry sets (a queue's throughput counters by the minutes that can exist: 65
        reads per queue). Reads only, in two pipelines: a consistent view only when idle."""
        k = self.keys
        asked = v.queue_names(queues) or []
        reg = yield [command("SMEMBERS", k.queues), command("SMEMBERS", k.workers)]
        names = sorted(set(texts(reg[0])) | set(asked))
        workers = sorted(texts(reg[1]))
        qkeys = [k.queue(q) for q in names]
        reads: list[tuple[str, str]] = [
            (k.queues, "set"),
            (k.workers, "set"),
            (k.supervisor, "string"),
        ]
        for wid in workers:
            reads += [(k.heartbeat(wid), "string"), (k.working_queues(wid), "set")]
        for qk in qkeys:
            reads += [
                (qk.tasks, "list"),
                (qk.returned, "list"),
                (qk.workers, "set"),
                (qk.deliveries, "hash"),
            ]
            reads += [(qk.dead, "list"), (qk.locks, "hash"), (qk.done_listeners, "string")]
            reads += [(key, "hash") for key in self._metric_keys(qk)]  # all that can exist
        values = yield [_read(key, kind) for key, kind in reads]
        found = {
            key: (kind, _value(kind, val)) for (key, kind), val in zip(reads, values, strict=True)
        }
        owners = [
            (qk, wid) for qk in qkeys for wid in sorted(set(workers) | set(found[qk.workers][1]))
        ]
        if owners:
            procs = yield [
                _read(key, kind)
                for qk, wid in owners
                for key, kind in ((qk.processes(wid), "hash"), (qk.staging(wid), "zset"))
            ]
            for (qk, wid), val, staged in zip(owners, procs[0::2], procs[1::2], strict=True):
                found[qk.processes(wid)] = ("hash", _value("hash", val))
                found[qk.staging(wid)] = ("zset", _value("zset", staged))
        return {key: kv for key, kv in sorted(found.items()) if kv[1] not in (None, [], {}, set())}


def _read(key: str, kind: str) -> Any:
    words = {
        "set": ("SMEMBERS",),
        "list": ("LRANGE", 0, -1),
        "hash": ("HGETALL",),
        "string": ("GET",),
        "zset": ("ZRANGE", 0, -1),
    }
    return command(words[kind][0], key, *words[kind][1:])


def _value(kind: str, reply: Any) -> Any:
    if kind == "string":
        return None if reply is None else texts([reply])[0]
    if kind == "hash":
        return hash_reply(reply)
    if kind == "set":
        return sorted(texts(reply))
    return texts(reply)  # a list, or a sorted set's members in order
