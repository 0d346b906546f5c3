"""The job API of the client (``submit``, ``get_job``, ``wait_for_result``...) and ``AsyncJob``,
the handle ``submit`` returns. This asyncio file is the source of ``_sync/jobs.py``.

Waiting shares the client's one subscriber connection: every waiter of a queue listens on its
job-end channel through it, and their reads go through at most ``JOB_READS`` (4) connections
at once, so a thousand waiters cost one subscription and a handful of connections.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import RedisError

from ...core import validate as v
from ...core.jobs import FAILURE_TTL, RESULT_TTL, JobInfo
from ...errors import ClientClosed, JobFailed, JobNotFound, JobWaitTimeout, WorqrError
from ...runtime.retry import Retry
from ..waiting import call_window, give_up, wait_limit
from .machinery import Machinery
from .primitives import Event, bounded


class AsyncJob:
    """A submitted job. ``id`` ("<queue>@<key>"), ``queue``; ``created`` is False when
    ``submit`` found a job with this id already (nothing was written) and ``status`` is the
    status ``submit`` saw. Reads go to Redis each time."""

    def __init__(self, client: AsyncJobsApi, jid: str, created: bool, status: str) -> None:
        self._client = client
        self.id = jid
        self.queue = jid.rpartition("@")[0]
        self.created = created
        self.status = status

    async def info(self) -> JobInfo | None:
        """The job's record now (``get_job``)."""
        return await self._client.get_job(self.id)

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the job to end and return its result (``wait_for_result``)."""
        return await self._client.wait_for_result(self.id, timeout)

    async def cancel(self) -> bool:
        """Cancel it if it is queued or scheduled (``cancel_job``)."""
        return await self._client.cancel_job(self.id)

    def __repr__(self) -> str:
        return f"<AsyncJob {self.id!r} {self.status}{'' if self.created else ' (existing)'}>"


class AsyncJobsApi(Machinery):
    """The job methods of the client."""

    async def submit(
        self,
        queue: str,
        function: str,
        /,
        *args: Any,
        job_id: str | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        result_ttl: float | None = RESULT_TTL,
        failure_ttl: float | None = FAILURE_TTL,
        job_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> AsyncJob:
        """Submit a call of ``function`` (a name a ``run_jobs`` worker knows) with ``args``
        and ``kwargs`` (plus ``job_kwargs``: keyword arguments named like submit's own) to
        the queue: its record and its task are written in one atomic script (submit.lua),
        queued at the tail, or delayed (``delay``/``at``). The arguments go through the
        serializer first: one it cannot write raises TypeError and nothing is written.
        ``job_id`` (a key: no "@") makes it idempotent: while a record with this id exists
        (live, or ended and not expired) the existing job is returned, ``created`` False.
        ``retry`` (a ``Retry``) and ``timeout`` (seconds) override the worker's for this job.
        The record of a finished job is kept ``result_ttl`` seconds, of a failed, dead or
        cancelled one ``failure_ttl`` (None: kept until its queue is deleted)."""
        options: dict[str, Any] = {}
        if retry is not None:
            if not isinstance(retry, Retry):
                raise TypeError(f"retry must be a Retry or None, not {type(retry).__name__}")
            options["retry"] = retry.to_json()
        if timeout is not None:
            options["timeout"] = v.seconds(timeout, "timeout")
        kw = dict(kwargs)
        if job_kwargs is not None:
            if not isinstance(job_kwargs, dict):
                raise TypeError("job_kwargs must be a dict")
            kw.update(job_kwargs)
        when = v.when(delay, at)
        op = self._core.submit(
            queue, function, args, kw, job_id, when, options, result_ttl, failure_ttl
        )
        jid, created, status = await self._run(op)
        return AsyncJob(self, jid, created, status)

    async def get_job(self, job_id: str) -> JobInfo | None:
        """The job's record (status, attempts, worker, times, result or error), or None if
        there is none (never submitted, expired, or its queue deleted). One round trip."""
        return await self._run(self._core.get_job(job_id))

    async def get_jobs(
        self, queue: str, *, status: str | None = None, limit: int = 100
    ) -> list[JobInfo]:
        """Up to ``limit`` jobs kept on the queue (with ``status``, if given), newest first.
        A scan of the queue's job records, for inspection (see ``Core.get_jobs``)."""
        return await self._run(self._core.get_jobs(queue, status, limit))

    async def cancel_job(self, job_id: str) -> bool:
        """Cancel a queued or scheduled job: it leaves its queue and becomes ``cancelled`` in
        the same call. A started or ended job is left as it is (False)."""
        return await self._run(self._core.cancel_job(job_id))

    async def wait_for_result(self, job_id: str, timeout: float | None = None) -> Any:
        """Wait until the job ends and return its result; raise ``JobFailed`` (with the
        recorded error) if it failed, died or was cancelled, ``JobNotFound`` if it has no
        record, ``JobWaitTimeout`` after ``timeout`` seconds (None: no limit). No lost
        wake-up: it listens before it reads, so a job that ended before the call or between
        the read and the wait returns at once."""
        info = await self.wait_for_job(job_id, timeout)
        if info.status == "finished":
            return info.result
        raise JobFailed(info)

    async def wait_for_job(self, job_id: str, timeout: float | None = None) -> JobInfo:
        """Wait until the job ends and return its record (any ending: see ``JobInfo``);
        ``JobNotFound`` and ``JobWaitTimeout`` as ``wait_for_result``. Listens on the queue's
        job-end channel (on the client's one subscriber; subscribed once per queue), reads
        the record (saying it listens), and reads again on each job end of the queue that is
        this job's, after a reconnect, and every ``poll_interval``."""
        queue, key = self._core.parse_job_id(job_id)
        limit = None if timeout is None else wait_limit(timeout)
        deadline = None if limit is None else time.monotonic() + limit
        channel = self._core.keys.queue(queue).job_ends
        ready = Event()
        with self._lock:  # sync: threads wait at once; the listener routes meanwhile
            self._job_waiters.setdefault((queue, key), set()).add(ready)
        try:
            if channel not in self._job_listened:
                self._job_channels[channel] = queue
                try:
                    await self._subscribe(channel, within=call_window(deadline))
                except WorqrError as exc:  # not subscribed in time
                    give_up(job_id, deadline, limit, exc)
                    raise
                self._job_listened.add(channel)
            while True:
                ready.clear()
                async with self._job_reads:  # a thousand waiters: a few connections
                    info = await self._read_job(job_id, deadline, limit)
                if info is None:
                    raise JobNotFound(f"no job {job_id!r} (never submitted, or expired)")
                if info.ended:
                    return info
                wait = self._core.options.poll_interval
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise JobWaitTimeout(
                            f"job {job_id!r} is still {info.status} after {limit:g} s"
                        )
                    wait = min(wait, left)
                if not self._closed():
                    await ready.wait(wait)
                if self._closed():
                    raise ClientClosed(f"the client was closed while waiting for job {job_id!r}")
        finally:
            with self._lock:
                waiters = self._job_waiters.get((queue, key))
                if waiters is not None:
                    waiters.discard(ready)
                    if not waiters:
                        del self._job_waiters[(queue, key)]

    async def _read_job(
        self, job_id: str, deadline: float | None, limit: float | None
    ) -> JobInfo | None:
        """A waiter's read of the job's record (saying it listens), retried while Redis is
        away for ``retry_timeout`` or until ``deadline``, whichever is first, and in asyncio
        cut at the deadline (a thread's read that Redis does not answer ends at the socket
        timeout); ``JobWaitTimeout`` once the deadline passed."""
        left = call_window(deadline)
        until = None if left is None else time.monotonic() + left
        try:
            op = self._core.get_job(job_id, listen=True)
            return await bounded(self._run(op, until=until), left)
        except (TimeoutError, RedisError) as exc:
            give_up(job_id, deadline, limit, exc)
            raise
