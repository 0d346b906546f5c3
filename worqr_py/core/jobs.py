"""Jobs: function calls with arguments, status, results and errors, as a layer over plain
tasks (lua/include/jobs.lua says how a job's record is kept; keys.py where). Pure: each
operation returns an Op for a driver to run.

A job's task is ``"\\x1f" + key``; its record lives in its queue's job hash, and every script
that moves a task sets the status of a job it moves, so the status never disagrees with
where the job is. Calls and results go through the serializer (JSON by default); options and
errors are JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Protocol

from . import scripts as S
from . import validate as v
from .calls import Call, Commuting, Op, command, hash_reply, script, text, time_ms
from .keys import JOB_MARK, QueueKeys, job_id, split_job_id
from .queues import QueueOps
from .returns import error_reason

RESULT_TTL = 3600.0  # seconds a finished job's record (and result) is kept by default
FAILURE_TTL = 7 * 86400.0  # seconds a failed, dead or cancelled job's record is kept
STATUSES = ("scheduled", "queued", "started", "finished", "failed", "dead", "cancelled")
ENDED = frozenset({"finished", "failed", "dead", "cancelled"})
FIELDS = ("s", "n", "w", "e", "b", "x", "r", "t", "o")
SCAN_CHUNK = 1000  # job-hash fields per HSCAN of get_jobs


class Serializer(Protocol):
    """What ``serializer=`` takes: text in and out (``json`` itself is one)."""

    def dumps(self, obj: Any) -> str: ...
    def loads(self, s: str) -> Any: ...


class JsonSerializer:
    """The default serializer: compact JSON, no NaN or infinity (other languages refuse it)."""

    def dumps(self, obj: Any) -> str:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)

    def loads(self, s: str) -> Any:
        return json.loads(s)


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job failed: the exception's ``type`` (e.g. ``"ValueError"``, ``""`` for a plain
    message), its ``message`` and ``traceback`` (truncated: the end is kept)."""

    type: str
    message: str
    traceback: str = ""


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job as its record says (``get_job``). Times are seconds since the epoch by the Redis
    server's clock (None: not yet). ``status`` is one of ``STATUSES``; ``attempts`` counts
    deliveries; ``result`` is set once ``finished``; ``error`` is the latest failure's (a
    job being retried keeps its last error until it ends). ``expires_at``: when the record of
    an ended job goes (None: kept, or not ended)."""

    id: str
    queue: str
    status: str
    function: str
    args: list[Any]
    kwargs: dict[str, Any]
    attempts: int
    worker: str | None
    enqueued_at: float | None
    started_at: float | None
    ended_at: float | None
    result: Any
    error: JobError | None
    expires_at: float | None
    options: dict[str, Any]

    @property
    def ended(self) -> bool:
        """Whether the job is finished, failed, dead or cancelled (it will not run again,
        unless a dead one is requeued)."""
        return self.status in ENDED


@dataclass(frozen=True, slots=True)
class JobCall:
    """What the job runtime needs of a dequeued job (``parse_job``)."""

    id: str
    function: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    enqueued_ms: int
    began_ms: int


def ms(seconds: Any, arg: str) -> int:
    """A TTL in ms: positive seconds, or None (kept: -1)."""
    return -1 if seconds is None else max(1, math.ceil(v.seconds(seconds, arg) * 1000))


class JobOps(QueueOps):
    """submit, get_job, get_jobs, cancel_job, and the job runtime's decoding."""

    serializer: Serializer = JsonSerializer()

    def submit(
        self,
        queue: str,
        function: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        job_key: str | None = None,
        when: tuple[str, int] | None = None,
        options: dict[str, Any] | None = None,
        result_ttl: float | None = RESULT_TTL,
        failure_ttl: float | None = FAILURE_TTL,
    ) -> Op[tuple[str, bool, str]]:
        """Write the job's record and queue it (or delay it: ``when`` as from
        ``validate.when``) in one submit.lua call (atomic; the queue listed and, when delayed,
        its delayed-queue hint in the same pipeline). Idempotent by key: while a record with
        this key exists nothing is written. Returns ``(id, created, status)``. Everything is
        checked and serialized before anything is sent."""
        k = self._queue(queue)
        fn = v.name(function, "function")
        key = self.new_id() if job_key is None else v.job_key(job_key)
        if not isinstance(args, (list, tuple)):
            raise TypeError(f"args must be a list or tuple, not {type(args).__name__}")
        kw = {} if kwargs is None else kwargs
        if not isinstance(kw, dict) or not all(isinstance(x, str) for x in kw):
            raise TypeError("kwargs must be a dict with str keys")
        try:
            call = self.serializer.dumps({"f": fn, "a": list(args), "k": kw})
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"the arguments of {fn!r} cannot be serialized: {exc}") from None
        if not isinstance(call, str):
            raise TypeError("the serializer must return str")
        ttls = f"{ms(result_ttl, 'result_ttl')}:{ms(failure_ttl, 'failure_ttl')}"
        opts = json.dumps(options or {}, separators=(",", ":"))
        mode, amount = when if when is not None else ("now", 0)
        keys = [k.tasks, k.idle, k.workers, k.delayed, k.jobs, k.job_expiry, *self._tally(k)]
        args_: list[str | int] = [k.events, self._wakes(k), queue, key, call, opts, ttls]
        args_ += [mode, amount]
        calls = [script(S.SUBMIT, keys, args_), command("SADD", self.keys.queues, queue)]
        if when is not None:  # after the submit, in the same pipeline: never lost
            calls.append(self._hint(queue, amount if mode == "at" else "now"))
        else:
            calls = Commuting(calls)
        reply = (yield calls)[0]
        return job_id(queue, key), int(reply[0]) == 1, text(reply[1])

    def get_job(self, jid: str, listen: bool = False) -> Op[JobInfo | None]:
        """The job's record (one pipeline: HMGET of its fields, ZSCORE of its expiry, TIME),
        or None if there is none (never submitted, expired, or its queue deleted). With
        ``listen`` (a waiter): also say that a job waiter listens on the queue (SET
        P:{E}:jl PX), so job ends are published."""
        queue, key = self.parse_job_id(jid)
        k = self.keys.queue(queue)
        calls = [command("TIME"), *_reads(k, key)]
        if listen:  # first: an end after the read is then published
            ttl = max(15_000, round(self.options.poll_interval * 3000))
            calls.insert(0, command("SET", k.job_waiters, "1", "PX", ttl))
        replies = yield calls
        replies = replies[1:] if listen else replies
        return self._info(jid, queue, replies[1], replies[2], time_ms(replies[0]))

    def get_jobs(
        self, queue: str, status: str | None = None, limit: int = 100
    ) -> Op[list[JobInfo]]:
        """The ``limit`` newest jobs of the queue (those with ``status``, if given), newest
        first by enqueue time: an HSCAN of the queue's job hash for the status and enqueue
        time fields only (``SCAN_CHUNK`` per round trip, read-only, never inside a script),
        then the chosen records in one pipeline. For inspection: it costs O(jobs kept)."""
        k = self._queue(queue)
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an int of at least 1, got {limit!r}")
        statuses: dict[str, str] = {}
        enqueued: dict[str, int] = {}
        cursor = "0"
        while True:
            cursor, items = yield command(
                "HSCAN", k.jobs, cursor, "MATCH", f"*{JOB_MARK}[se]", "COUNT", SCAN_CHUNK
            )
            for field, value in hash_reply(items).items():
                if field.endswith("s"):
                    statuses[field[:-2]] = value
                else:
                    enqueued[field[:-2]] = int(value)
            if text(cursor) == "0":
                break
        found = [key for key, s in statuses.items() if status is None or s == status]
        found.sort(key=lambda key: enqueued.get(key, 0), reverse=True)
        keys = found[:limit]
        if not keys:
            return []
        replies = yield [command("TIME"), *[c for key in keys for c in _reads(k, key)]]
        now = time_ms(replies[0])
        jobs = []
        for i, key in enumerate(keys):
            info = self._info(
                job_id(queue, key), queue, replies[1 + 2 * i], replies[2 + 2 * i], now
            )
            if info is not None and (status is None or info.status == status):
                jobs.append(info)
        return sorted(jobs, key=lambda j: j.enqueued_at or 0, reverse=True)

    def cancel_job(self, jid: str) -> Op[bool]:
        """Cancel a queued or scheduled job: its task leaves the queue or the delayed set and
        its status becomes ``cancelled`` in the same call (cancel_tasks' bounded steps). A
        started job is its worker's (not interrupted); an ended one stays as it is. Returns
        whether it was cancelled."""
        queue, key = self.parse_job_id(jid)
        return (yield from self.cancel_tasks(queue, JOB_MARK + key)) > 0

    @staticmethod
    def parse_job_id(jid: str) -> tuple[str, str]:
        parts = split_job_id(v.name(jid, "job_id"))
        if parts is None:
            raise ValueError(f"job_id {jid!r} is not a job id ('<queue>@<key>')")
        return parts[0], v.job_key(parts[1])

    def parse_job(self, queue: str, task: str, job: str) -> JobCall:
        """A dequeued job's call (``Process.job``: "<enqueued>:<began>\\x1f<options>\\x1f<call>").
        Raises ValueError if the serializer cannot read it."""
        times, _, rest = job.partition(JOB_MARK)
        opts, _, call = rest.partition(JOB_MARK)
        enq, _, began = times.partition(":")
        body = self.serializer.loads(call)
        if not isinstance(body, dict) or not isinstance(body.get("f"), str):
            raise ValueError("not a job call")
        return JobCall(
            job_id(queue, task[1:]),
            body["f"],
            list(body.get("a") or []),
            dict(body.get("k") or {}),
            json.loads(opts or "{}"),
            int(enq or 0),
            int(began or 0),
        )

    def finished(self, result: Any) -> str:
        """The settle outcome of a job that returned ``result`` (raises TypeError if the
        serializer cannot write it)."""
        try:
            data = self.serializer.dumps(result)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"the job's result cannot be serialized: {exc}") from None
        return "f:" + data

    @staticmethod
    def failed(error: BaseException | str) -> str:
        """The settle outcome of a job that failed with ``error``."""
        return "x:" + error_reason(error)

    def _info(self, jid: str, queue: str, reply: Any, expires: Any, now: int) -> JobInfo | None:
        """A JobInfo from the replies of ``_reads`` (None: no record, or it expired)."""
        if reply[0] is None or (expires is not None and float(expires) <= now):
            return None
        call, s, n, w, e, b, x, r, _, o = [None if y is None else text(y) for y in reply]
        try:
            body = self.serializer.loads(call or "{}")
        except ValueError:
            body = {}
        status = s or "queued"
        result, error = None, None
        if r is not None and status == "finished":
            result = self.serializer.loads(r)
        elif r is not None:
            why = json.loads(r)
            error = JobError(why.get("type", ""), why.get("message", ""), why.get("traceback", ""))
        return JobInfo(
            id=jid,
            queue=queue,
            status=status,
            function=str(body.get("f", "")),
            args=list(body.get("a") or []),
            kwargs=dict(body.get("k") or {}),
            attempts=int(n or 0),
            worker=w.rpartition(".")[0] if w else None,  # w: "W.token"
            enqueued_at=_seconds(e),
            started_at=_seconds(b),
            ended_at=_seconds(x),
            result=result,
            error=error,
            expires_at=None if expires is None else float(expires) / 1000,
            options=json.loads(o or "{}"),
        )


def _reads(k: QueueKeys, key: str) -> list[Call]:
    """The reads of job ``key``'s record: HMGET of its fields, ZSCORE of its expiry."""
    fields = [f"{key}{JOB_MARK}{f}" for f in FIELDS]
    return [command("HMGET", k.jobs, key, *fields), command("ZSCORE", k.job_expiry, key)]


def _seconds(value: str | None) -> float | None:
    return None if value is None else int(value) / 1000
