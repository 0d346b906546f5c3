"""The data worqr_py passes around: processes, options and this instance's worker state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from . import validate as v


class Reason(str, Enum):
    """Why a worker failed: the ``reason`` of its ``failed`` event (a str)."""

    CALLED = "fail_worker() called"  # deliberate: nothing to recover, no re-registration
    LAPSED = "heartbeat lapsed: no refresh within heartbeat_ttl minus margin"
    EXPIRED = "heartbeat key expired"
    RESTARTED = "Redis restarted without its data (run_id changed)"
    REMOVED = "removed from a queue by a peer (failed or reclaimed)"

    __str__ = str.__str__
    __format__ = str.__format__  # type: ignore[assignment]


class Removal(str, Enum):
    """How fence_worker.lua takes a worker out: FAIL it whatever its state, or REAP it only
    if its heartbeat is already gone (a peer's reclaim)."""

    FAIL = "fail"
    REAP = "reap"


@dataclass(frozen=True, slots=True)
class Failed:
    """This instance's worker failed (after its ``Lost`` events)."""

    worker_id: str | None
    reason: Reason


@dataclass(frozen=True, slots=True)
class Lost:
    """A process this worker held is no longer its own."""

    process: Process


@dataclass(frozen=True, slots=True)
class Cleanup:
    """The Redis side of ``worker``'s failure is to be done (in the background)."""

    worker: WorkerState


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """A peer's processes on ``queue`` went back to its front (``count`` of them)."""

    worker_id: str
    queue: str
    count: int


@dataclass(frozen=True, slots=True)
class Dead:
    """A task went to the queue's dead-letter list."""

    queue: str
    task: str


@dataclass(frozen=True, slots=True)
class RedisRestarted:
    """Redis' run_id changed since this client last saw it."""

    old_run_id: str | None
    new_run_id: str | None


CoreEvent = Failed | Lost | Cleanup | Reclaimed | Dead | RedisRestarted
Notify = Callable[[CoreEvent], None]


@dataclass(frozen=True, slots=True)
class Process:
    """A task being worked on: ``id`` (finish or stop it by this), ``queue``, ``task``, and
    ``deliveries``, how many times this task has been handed to a worker, this time included.
    For a job (``submit``): ``job`` is its options and call as dequeued, for the job runtime
    (``"<options JSON>\x1f<call>"``); None for a plain task."""

    id: str
    queue: str
    task: str
    deliveries: int = 1
    job: str | None = field(default=None, repr=False, compare=False)


_ID, _QUEUE, _TASK, _DELIVERIES, _JOB = (
    Process.__dict__[name].__set__ for name in ("id", "queue", "task", "deliveries", "job")
)


def new_process(pid: str, queue: str, task: str, deliveries: int, job: str | None) -> Process:
    """``Process(pid, queue, task, deliveries, job)``, built without the frozen dataclass'
    ``__init__`` (an ``object.__setattr__`` call per field): the same object, in about half
    the time; a take builds one per task."""
    p: Process = object.__new__(Process)
    _ID(p, pid)
    _QUEUE(p, queue)
    _TASK(p, task)
    _DELIVERIES(p, deliveries)
    _JOB(p, job)
    return p


@dataclass(frozen=True, slots=True)
class Delayed:
    """A delayed task: ``task``, ``due`` (when it is promoted to its queue: seconds since the
    epoch by the Redis server's clock) and ``deliveries`` so far (0: never delivered; more:
    a process returned with a delay, which goes to the front when due)."""

    task: str
    due: float
    deliveries: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter, with why it died where that was recorded (else the fields are None): the
    handler's exception (``error_type``, e.g. ``"ValueError"`` or ``"myapp.Timeout"``,
    ``error_message``, ``traceback``), or a message given to ``dead_letter_process``
    (``error_type`` ""); its ``deliveries`` then and when it died (``at``: seconds since the
    epoch, Redis server clock). Copies of one task share the latest copy's record."""

    task: str
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    deliveries: int | None = None
    at: float | None = None


@dataclass(frozen=True, slots=True)
class Options:
    """Validated settings shared by both drivers (see ``Worqr`` for their meaning)."""

    prefix: str = "worqr"
    heartbeat_interval: float = 1.0
    heartbeat_ttl: float = 3.0
    poll_interval: float = 5.0
    max_deliveries: int | None = 5
    retry_timeout: float = 10.0

    def __post_init__(self) -> None:
        v.prefix(self.prefix)
        v.seconds(self.heartbeat_interval, "heartbeat_interval")
        v.seconds(self.heartbeat_ttl, "heartbeat_ttl")
        v.seconds(self.poll_interval, "poll_interval")
        m = self.max_deliveries
        if m is not None and (isinstance(m, bool) or not isinstance(m, int)):
            raise TypeError(f"max_deliveries must be an int or None, not {type(m).__name__}")
        if m is not None and m < 1:
            raise ValueError(f"max_deliveries must be at least 1 (or None: never), got {m}")
        if isinstance(self.retry_timeout, bool) or not isinstance(self.retry_timeout, (int, float)):
            raise TypeError("retry_timeout must be a number of seconds")
        if not 0 <= self.retry_timeout <= v.MAX_SECONDS:
            raise ValueError(
                f"retry_timeout must be 0 or more seconds, at most a century, "
                f"got {self.retry_timeout}"
            )
        if self.heartbeat_ttl <= self.heartbeat_interval:
            raise ValueError("heartbeat_ttl must be longer than heartbeat_interval")

    @property
    def dead_after(self) -> int:
        """max_deliveries as the scripts take it: 0 means never dead-letter."""
        return self.max_deliveries or 0

    @property
    def ttl_ms(self) -> int:
        return max(1, round(self.heartbeat_ttl * 1000))

    @property
    def margin(self) -> float:
        """How long before Redis would expire it a worker stops trusting its heartbeat."""
        return (self.heartbeat_ttl - self.heartbeat_interval) / 2


@dataclass(slots=True)
class WorkerState:
    """This instance's worker: id, liveness deadline (monotonic), queues, held processes."""

    id: str | None = None
    failed: str | None = None
    deadline: float = 0.0
    queues: set[str] = field(default_factory=set)
    held: dict[str, Process] = field(default_factory=dict)
    next_token: int = 1
    cleaned: bool = False
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """One queue in an :class:`Overview`: its length and the workers working on it."""

    name: str
    length: int
    workers: list[str]


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One registered worker in an :class:`Overview`. ``heartbeat_age`` is seconds since its
    last refresh and ``ttl`` its heartbeat TTL; both None once its heartbeat is gone (dead,
    not yet reaped)."""

    id: str
    heartbeat_age: float | None
    ttl: float | None
    queues: list[str]
    processes: list[Process]
    permanent: bool = False

    @property
    def alive(self) -> bool:
        return self.permanent or self.ttl is not None


@dataclass(frozen=True, slots=True)
class Overview:
    """What ``inspect`` shows: every queue with its length, every worker with its processes."""

    queues: list[QueueInfo]
    workers: list[WorkerInfo]


@dataclass(frozen=True, slots=True)
class Counts:
    """Tasks counted on a queue by the scripts that move them (lua/include/tally.lua):
    ``enqueued`` (queued, scheduled, submitted or fired by a schedule), ``done`` (finished),
    ``failed`` (a job failed, or a task dead-lettered) and ``retried`` (returned for later)."""

    enqueued: int = 0
    done: int = 0
    failed: int = 0
    retried: int = 0

    @classmethod
    def of(cls, fields: dict[str, str]) -> Counts:
        """From a counter hash (kinds i, o, f, r)."""
        return cls(*(int(fields.get(kind, 0)) for kind in ("i", "o", "f", "r")))


@dataclass(frozen=True, slots=True)
class Minute:
    """One minute of a queue's throughput: when it began (epoch seconds) and its counts."""

    at: int
    counts: Counts


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One queue at a glance (``queue_stats``): tasks queued, delayed, in process (held by
    its workers) and dead-lettered, its workers, and its counts since they began."""

    name: str
    length: int
    delayed: int
    in_process: int
    dead: int
    workers: list[str]
    counts: Counts
