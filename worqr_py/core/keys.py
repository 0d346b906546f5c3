"""Every Redis key and channel worqr_py uses, built in this one module.

Key schema (``P`` = prefix, ``E`` = queue name with ``%``, ``{`` and ``}`` percent-escaped,
``W`` = worker id). No script builds a key: every key a script touches is passed in KEYS.

Per queue, all in the hash slot of ``{E}`` (so one script per queue is Cluster-safe)::

    P:{E}:q        list    the queue; head = next task. New tasks RPUSH at the tail, returned
                           tasks LPUSH at the head (delivered next).
    P:{E}:qn       list    delivery counts of the first LLEN(qn) entries of q: the returned tasks.
    P:{E}:w        set     ids of the workers working on the queue; dequeue requires membership,
                           every leave_queue call (reclaim) removes it before it returns any of
                           the worker's processes.
    P:{E}:p:W      hash    worker W's processes on this queue: token -> task (Worqr's W1_Q1 set).
    P:{E}:s:W      zset    staging of W's leave of this queue, only while a leave of more than
                           one chunk is under way (leave_queue.lua): W's tokens (score = member
                           = token), plus while the record is still being scanned one marker
                           at score -1, "c<HSCAN cursor>". Returned newest first by ZPOPMAX;
                           gone when the leave is complete. Any caller resumes it.
    P:{E}:d        hash    "W.token" -> delivery count, only for tasks delivered more than once.
    P:{E}:dead     list    dead letters (oldest first): tasks returned after max_deliveries,
                           or dead-lettered by the runtime after their last retry.
    P:{E}:dr       hash    why a dead letter died: task -> {"deliveries", "at" (server ms),
                           "error": {"type", "message", "traceback"}} of its latest copy
                           dead-lettered with a reason (one without drops it); cleaned up by
                           purge_dead and requeue_dead.
    P:{E}:u        hash    uniqueness locks: task -> "q" (queued), "r" (returned to the head;
                           its qn entry ends in ":u") or "W.token" (in process).
    P:{E}:z        zset    delayed tasks, scored by due time (server ms): "<id>:<n>:<u>:<task>"
                           (lua/include/delayed.lua); promoted to q when due, exactly once.
    P:{E}:sched    hash    periodic schedules of the queue: name -> spec (JSON: task, every_ms
                           or cron), as schedule() last set it.
    P:{E}:sf       hash    their firing: name -> "<since ms>:<last fire ms>:<fires>:<W>" (server
                           clock; W fired last); a fire time is enqueued only if later than
                           the last one, in the same script (periodic_fire.lua): once each.
    P:{E}:i        zset    workers of the queue waiting for work (their runner is idle), scored by
                           when they began to wait (ms): each new task wakes the most recent.
    P:{E}:j        hash    job records (lua/include/jobs.lua): a job is the task "\x1f" + K, K its
                           key; fields K (its call, as the serializer wrote it), and K + "\x1f" +
                           s status, n attempts, w worker, e/b/x enqueued/began/ended (server
                           ms), r result or error, t "<result ttl ms>:<failure ttl ms>",
                           o options (JSON). Every script that moves a job sets its status.
    P:{E}:jx       zset    ended jobs -> when their record expires (server ms); each job end
                           drops at most 2 expired records (bounded), submit one it reuses.
    P:{E}:jl       string  "job waiters present" (PX, refreshed by each waiting client): job ends
                           PUBLISH on P:{E}:jd only while it exists.
    P:{E}:jd       channel pub/sub: K, when job K ended (finished, failed, dead, cancelled).
    P:{E}:m        hash    throughput since the counters began: i in (enqueued, scheduled,
                           submitted, fired), o done, f failed (a job failed or a task
                           dead-lettered), r retried; written by the scripts that move them, one
                           HINCRBY per kind per call (lua/include/tally.lua).
    P:{E}:m:<min>  hash    the same kinds counted in one minute of the caller's clock (minutes
                           since the epoch); expires 62 minutes after it began: the last hour.
    P:{E}:ev       channel pub/sub: "work:<n>", "cancel:<task>", "delete:", "dead:<task>".
    P:{E}:done     channel pub/sub: {"workerId", "task", "result"} per finish (JSON), sent only
                           while P:{E}:dl exists.
    P:{E}:dl       string  "done listeners present": set (PX) by every done listener and
                           refreshed on its poll, so finishing costs no PUBLISH when none listen.

Worker registry, all in the hash slot of ``{P}``::

    {P}:workers    set     registered worker ids
    {P}:hb:W       string  heartbeat, value = its TTL in ms; SET XX PX <ttl> every interval;
                           gone = worker dead (age = value - PTTL)
    {P}:wq:W       set     names of the queues W works on
    {P}:queues     set     names of the queues ever enqueued to and not deleted
    {P}:delayed    zset    queues that may have delayed tasks -> a time (server ms) at or
                           before the queue's earliest due one: the supervision turn's list
                           of queues to promote (a hint: lowered by each delay, raised only
                           by the promoter, lua/hint.lua and rehint.lua).
    {P}:delayed:v  hash    queue -> version, bumped by each delay (rehint's compare).
    {P}:schedules  set     queues that have (or had) periodic schedules: the runtime's list.
    {P}:sup        string  supervision turn: SET NX PX, one peer scans per interval
    {P}:wake:W     channel pub/sub: a queue name: a task there for W's runner (it waits on it).
                           The one name a script completes ({P}:wake: .. W; on a Redis Cluster
                           P:{E}:wk: .. W below): a channel is not a key.

On a Redis Cluster every channel is a shard channel of its queue's slot (the scripts SPUBLISH,
clients SSUBSCRIBE on that slot's master), and a worker's wake channel is per queue::

    P:{E}:wk:W     channel sharded pub/sub: the queue name: a task there for W's runner.

A job id is ``"<queue>@<K>"`` (K has no ``@``), split at the last ``@``: like a process id it
routes to its queue's hash slot without a lookup.

A process id is ``"<queue>_<W>.<token>"``: it names its queue, its worker and its token, so any
instance can route it without a lookup. Worker ids are hex and tokens decimal, so the id splits
unambiguously at the last ``_``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


def escape(queue: str) -> str:
    """Percent-escape ``%``, ``{`` and ``}`` so a queue name is a whole, collision-free hash tag."""
    return queue.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """The keys and channel of one queue. Pure data, no I/O."""

    queue: str
    tasks: str  # P:{E}:q
    returned: str  # P:{E}:qn
    workers: str  # P:{E}:w
    deliveries: str  # P:{E}:d
    dead: str  # P:{E}:dead
    dead_reasons: str  # P:{E}:dr
    schedules: str  # P:{E}:sched
    fired: str  # P:{E}:sf
    locks: str  # P:{E}:u
    idle: str  # P:{E}:i
    delayed: str  # P:{E}:z
    events: str  # P:{E}:ev (channel)
    done: str  # P:{E}:done (channel)
    done_listeners: str  # P:{E}:dl
    jobs: str  # P:{E}:j
    job_expiry: str  # P:{E}:jx
    job_waiters: str  # P:{E}:jl
    job_ends: str  # P:{E}:jd (channel)
    wakes: str  # P:{E}:wk: (prefix of its workers' wake channels on a Redis Cluster)
    metrics: str  # P:{E}:m (throughput totals; P:{E}:m:<minute> per minute)
    _base: str

    @property
    def job_keys(self) -> list[str]:
        """The three job KEYS every script that moves tasks ends with: P:{E}:j, jx, jl."""
        return [self.jobs, self.job_expiry, self.job_waiters]

    def tally_keys(self, minute: int) -> list[str]:
        """The two throughput KEYS a counting script ends with (include/tally.lua): the
        totals P:{E}:m and ``minute``'s P:{E}:m:<minute> (minutes since the epoch)."""
        return [self.metrics, self.metrics_minute(minute)]

    def metrics_minute(self, minute: int) -> str:
        """Key of the hash counting the queue's throughput in ``minute`` (since the epoch)."""
        return f"{self.metrics}:{minute}"

    def processes(self, worker_id: str) -> str:
        """Key of the hash holding ``worker_id``'s processes on this queue."""
        return f"{self._base}:p:{worker_id}"

    def dequeue_keys(self, worker_id: str) -> list[str]:
        """The KEYS of dequeue.lua for ``worker_id``, in its header's order."""
        return [
            self.tasks,
            self.returned,
            self.workers,
            self.processes(worker_id),
            self.deliveries,
            self.locks,
            self.done_listeners,
            self.idle,
            self.delayed,
            *self.job_keys,
        ]

    def stop_keys(self, worker_id: str) -> list[str]:
        """The KEYS of stop.lua for ``worker_id``, in its header's order."""
        return [
            self.tasks,
            self.returned,
            self.processes(worker_id),
            self.deliveries,
            self.dead,
            self.locks,
            self.idle,
            self.workers,
            self.dead_reasons,
            *self.job_keys,
        ]

    def retry_keys(self, worker_id: str) -> list[str]:
        """The KEYS of retry.lua for ``worker_id``, in its header's order."""
        return [
            self.delayed,
            self.processes(worker_id),
            self.deliveries,
            self.dead,
            self.locks,
            self.idle,
            self.workers,
            self.dead_reasons,
            *self.job_keys,
        ]

    def promote_keys(self) -> list[str]:
        """The KEYS of promote.lua, in its header's order."""
        keys = [self.delayed, self.tasks, self.returned, self.locks, self.idle, self.workers]
        return [*keys, *self.job_keys]

    def staging(self, worker_id: str) -> str:
        """Key of the sorted set staging ``worker_id``'s leave of this queue (leave_queue)."""
        return f"{self._base}:s:{worker_id}"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builder for one prefix. Pure, cached, no I/O."""

    prefix: str

    @property
    def workers(self) -> str:
        return f"{{{self.prefix}}}:workers"

    @property
    def queues(self) -> str:
        return f"{{{self.prefix}}}:queues"

    @property
    def delayed(self) -> str:
        """The registry of queues that may have delayed tasks (zset: queue -> hint)."""
        return f"{{{self.prefix}}}:delayed"

    @property
    def delayed_versions(self) -> str:
        return f"{{{self.prefix}}}:delayed:v"

    @property
    def schedules(self) -> str:
        """The registry of queues with periodic schedules (set)."""
        return f"{{{self.prefix}}}:schedules"

    @property
    def supervisor(self) -> str:
        return f"{{{self.prefix}}}:sup"

    def heartbeat(self, worker_id: str) -> str:
        return f"{{{self.prefix}}}:hb:{worker_id}"

    @property
    def wakes(self) -> str:
        """The prefix of every worker's wake channel (scripts append the worker id)."""
        return f"{{{self.prefix}}}:wake:"

    def wake(self, worker_id: str) -> str:
        """The channel on which ``worker_id``'s runner is woken (message: the queue)."""
        return f"{self.wakes}{worker_id}"

    def working_queues(self, worker_id: str) -> str:
        return f"{{{self.prefix}}}:wq:{worker_id}"

    def queue(self, queue: str) -> QueueKeys:
        return _queue_keys(self.prefix, queue)


@lru_cache(maxsize=4096)
def _queue_keys(prefix: str, queue: str) -> QueueKeys:
    base = f"{prefix}:{{{escape(queue)}}}"
    return QueueKeys(
        queue=queue,
        tasks=f"{base}:q",
        returned=f"{base}:qn",
        workers=f"{base}:w",
        deliveries=f"{base}:d",
        dead=f"{base}:dead",
        dead_reasons=f"{base}:dr",
        schedules=f"{base}:sched",
        fired=f"{base}:sf",
        locks=f"{base}:u",
        done=f"{base}:done",
        done_listeners=f"{base}:dl",
        jobs=f"{base}:j",
        job_expiry=f"{base}:jx",
        job_waiters=f"{base}:jl",
        job_ends=f"{base}:jd",
        idle=f"{base}:i",
        delayed=f"{base}:z",
        events=f"{base}:ev",
        wakes=f"{base}:wk:",
        metrics=f"{base}:m",
        _base=base,
    )


def job_id(queue: str, key: str) -> str:
    """The public id of a job."""
    return f"{queue}@{key}"


def split_job_id(jid: str) -> tuple[str, str] | None:
    """``(queue, key)`` of a job id, or None if it is not one."""
    queue, sep, key = jid.rpartition("@")
    if not (sep and queue and key):
        return None
    return queue, key


JOB_MARK = "\x1f"  # a job's task is JOB_MARK + its key; no plain task may start with it


def process_id(queue: str, worker_id: str, token: int | str) -> str:
    """The public id of a process."""
    return f"{queue}_{worker_id}.{token}"


def process_ids(queue: str, worker_id: str, first: int, count: int) -> list[str]:
    """The ids of ``count`` processes of one take, tokens ``first`` on (``process_id``'s)."""
    head = process_id(queue, worker_id, "")
    return [f"{head}{token}" for token in range(first, first + count)]


def split_process_id(pid: str) -> tuple[str, str, str] | None:
    """``(queue, worker_id, token)`` of a process id, or None if it is not one of ours."""
    queue, sep, rest = pid.rpartition("_")
    worker_id, dot, token = rest.partition(".")
    if not (sep and queue and dot and worker_id and token.isdigit()):
        return None
    return queue, worker_id, token
