"""The ``worqr`` command (also ``python -m worqr_py``): run workers, manage and watch queues.

Every command reads ``--url`` (or ``$REDIS_URL``) and ``--prefix`` (or ``$WORQR_PREFIX``).
A user mistake (bad URL, Redis down, unknown module) prints one line and exits non-zero.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click
import redis
from rich.console import Console
from rich.live import Live

from ..core import validate as v
from ..core.model import Reason
from ..core.redact import redact, redact_url
from ..drivers._sync.client import Worqr
from ..errors import WorqrError
from ..runtime.retry import Retry
from .cli_jobs import job, jobs
from .cli_schedules import retry_options, retry_text, schedules
from .cli_web import dashboard
from .render import render
from .targets import load, load_jobs
from .views import dead_line, delayed_lines, enqueue_later, one_line, view
from .when import duration_option, instant_option, server_now

F = TypeVar("F", bound=Callable[..., Any])
console = Console()
log = logging.getLogger("worqr_py.cli")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Settings:
    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix

    def client(self, **options: Any) -> Worqr:
        """A client; a bad option value (each check names its argument first) is a usage
        error naming the option (status 2), a bad URL a user mistake (status 1)."""
        try:
            return Worqr(self.url, prefix=self.prefix, **options)
        except ValueError as exc:
            arg = str(exc).split(" ", 1)[0]
            if arg in CLIENT_OPTIONS:
                option = "--" + arg.replace("_", "-")
                raise click.UsageError(redact(f"Invalid value for '{option}': {exc}")) from None
            raise click.ClickException(redact(f"bad --url or option: {exc}")) from None


CLIENT_OPTIONS = ("prefix", "heartbeat_interval", "heartbeat_ttl", "poll_interval")


class Cli(click.Group):
    """Turns expected failures into one line on stderr and exit status 1, with any
    credentials in a URL masked."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except redis.ConnectionError as exc:
            url = redact_url(str(ctx.params.get("url") or (ctx.obj and ctx.obj.url)))
            raise click.ClickException(redact(f"cannot reach Redis at {url}: {exc}")) from None
        except (redis.RedisError, WorqrError, ValueError, TypeError) as exc:
            raise click.ClickException(redact(str(exc))) from None


@click.group(cls=Cli, commands=[schedules, job, jobs, dashboard])
@click.option(
    "--url",
    envvar="REDIS_URL",
    default="redis://localhost:6379/0",
    show_default=True,
    help="Redis URL ($REDIS_URL).",
)
@click.option(
    "--prefix",
    envvar="WORQR_PREFIX",
    default="worqr",
    show_default=True,
    help="Key prefix ($WORQR_PREFIX).",
)
@click.version_option(package_name="worqr_py")
@click.pass_context
def main(ctx: click.Context, url: str, prefix: str) -> None:
    """worqr: a reliable, peer-supervised work queue on plain Redis."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    ctx.obj = Settings(url, prefix)


def settings(f: F) -> F:
    return click.pass_obj(f)  # type: ignore[return-value]


def queue_names(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    """Click callback: every ``--queue`` must be a non-empty name; a list of them."""
    if any(not q for q in value):
        raise click.BadParameter("a queue name must not be empty", ctx, param)
    return list(value)


class Seconds(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """A positive number of seconds, at most a century (``validate.seconds``): NaN, infinity
    and absurd values are a bad option value (exit status 2), not an error later."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        try:
            return v.seconds(number, "the value")
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


POSITIVE = Seconds()


@main.command()
@click.argument("target")
@click.option(
    "--queue",
    "-q",
    "queues",
    multiple=True,
    required=True,
    callback=queue_names,
    help="Queue (repeatable).",
)
@click.option(
    "--concurrency",
    "-c",
    default=1,
    type=click.IntRange(min=1),
    show_default=True,
    help="Handlers at once.",
)
@click.option(
    "--grace",
    default=30.0,
    type=POSITIVE,
    show_default=True,
    help="Seconds in-flight handlers get to finish on SIGTERM.",
)
@click.option(
    "--prefetch",
    default=1,
    type=click.IntRange(min=1),
    show_default=True,
    help="Tasks each handler takes at once (held by this worker until it runs them).",
)
@click.option(
    "--max-deliveries",
    default=5,
    type=click.IntRange(min=0),
    show_default=True,
    help="Deliveries after which a returned task is dead-lettered (0: never).",
)
@click.option(
    "--heartbeat-interval",
    default=1.0,
    type=POSITIVE,
    show_default=True,
    help="Seconds between heartbeats (and supervision turns).",
)
@click.option(
    "--heartbeat-ttl",
    default=3.0,
    type=POSITIVE,
    show_default=True,
    help="Seconds a heartbeat lasts: peers reclaim this worker's tasks that long after its "
    "last one. Must exceed --heartbeat-interval.",
)
@click.option(
    "--poll-interval",
    default=5.0,
    type=POSITIVE,
    show_default=True,
    help="Seconds between checks of the queues for work a lost notification left behind.",
)
@click.option(
    "--jobs",
    "run_jobs",
    is_flag=True,
    help="TARGET is a module of job functions (its JOBS mapping, or its public functions): "
    "run them as jobs made by submit (run_jobs).",
)
@click.option("--timeout", type=POSITIVE, default=None, help="With --jobs: seconds per job.")
@retry_options
@settings
def worker(
    s: Settings,
    target: str,
    queues: list[str],
    concurrency: int,
    grace: float,
    prefetch: int,
    max_deliveries: int,
    heartbeat_interval: float,
    heartbeat_ttl: float,
    poll_interval: float,
    retry: Retry | None,
    run_jobs: bool,
    timeout: float | None,
) -> None:
    """Run TARGET (module:function, called with each Process; with --jobs a module of job
    functions) on the queues until SIGTERM; it also fires the periodic schedules."""
    if timeout is not None and not run_jobs:
        raise click.UsageError("--timeout needs --jobs")
    functions = load_jobs(target) if run_jobs else None
    handler = load(target) if functions is None else None
    w = s.client(
        heartbeat_interval=heartbeat_interval,
        heartbeat_ttl=heartbeat_ttl,
        poll_interval=poll_interval,
        max_deliveries=max_deliveries or None,
    )
    w.events.on("failed", worker_failed)
    w.events.on("redis_restarted", redis_restarted)
    try:
        wid = w.start_worker()
        log.info(
            "worker %s runs %s on %s at %s (prefix %r, concurrency %d, prefetch %d, "
            "max deliveries %s, retries %s, heartbeat %gs / ttl %gs, poll %gs)",
            wid,
            target,
            ", ".join(queues),
            redact_url(s.url),
            s.prefix,
            concurrency,
            prefetch,
            max_deliveries or "never",
            retry_text(retry),
            heartbeat_interval,
            heartbeat_ttl,
            poll_interval,
        )
        options: dict[str, Any] = {"concurrency": concurrency, "grace": grace}
        options.update(prefetch=prefetch, retry=retry)
        if functions is not None:
            w.run_jobs(functions, queues, timeout=timeout, **options)
        elif handler is not None:
            w.run(queues, handler, **options)
    finally:
        w.close()


def redis_restarted(old_run_id: str, new_run_id: str) -> None:
    """Say loudly that Redis restarted: without persistence its queues are gone."""
    log.error(
        "REDIS RESTARTED (run_id %s... is now %s...): if it runs without persistence, every "
        "queued task and every record was lost; this worker registers again and goes on",
        old_run_id[:8],
        new_run_id[:8],
    )


def worker_failed(worker_id: str, reason: str) -> None:
    """Log a worker's end: a deliberate stop (``fail_worker()``) is routine, anything else
    (heartbeat lost, Redis restarted) is a warning."""
    if reason == Reason.CALLED:
        log.info("worker %s left its queues; what it still held went back to the front", worker_id)
    else:
        log.warning("worker %s failed: %s", worker_id, reason)


@main.command()
@click.argument("queue")
@click.argument("tasks", nargs=-1)
@click.option(
    "--in",
    "delay",
    callback=duration_option,
    metavar="DURATION",
    help="Deliver them after this long: 500ms, 30s, 5m, 2h, 1d, 1m30s, or seconds.",
)
@click.option(
    "--at",
    callback=instant_option,
    metavar="ISO-TIME",
    help="Deliver them at this time, ISO 8601 (2026-11-24T12:00:00+00:00; no offset: local).",
)
@settings
def enqueue(
    s: Settings, queue: str, tasks: tuple[str, ...], delay: float | None, at: datetime | None
) -> None:
    """Append TASKS (or, with none, one task per line of stdin) to QUEUE, atomically; with
    --in or --at, delay them until then (by the Redis server's clock)."""
    if delay is not None and at is not None:
        raise click.UsageError("give --in or --at, not both")
    items = list(tasks) or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    with s.client() as w:
        if delay is None and at is None:
            click.echo(f"enqueued {len(items)}; {queue} has {w.enqueue(queue, items)}")
        else:
            click.echo(enqueue_later(w, queue, items, delay, at))


@main.command()
@settings
def queues(s: Settings) -> None:
    """List the queues."""
    with s.client() as w:
        for name in w.get_queues():
            click.echo(name)


@main.command()
@settings
def workers(s: Settings) -> None:
    """List the registered workers."""
    with s.client() as w:
        for wid in w.get_workers():
            click.echo(wid)


@main.command()
@click.argument("queue")
@click.option("--delayed", is_flag=True, help="The delayed tasks instead, earliest due first.")
@settings
def tasks(s: Settings, queue: str, delayed: bool) -> None:
    """List QUEUE's tasks, next first, one per line (escaped and quoted if need be). With
    --delayed: its delayed tasks, each as due time (UTC), how long until then, deliveries
    so far, and the task."""
    with s.client() as w:
        if delayed:
            for line in delayed_lines(w.get_delayed(queue), server_now(w)):
                click.echo(line)
            return
        for task in w.get_tasks(queue):
            click.echo(one_line(task))


@main.command()
@click.argument("queue")
@click.argument("task")
@settings
def cancel(s: Settings, queue: str, task: str) -> None:
    """Remove every queued copy of TASK from QUEUE and tell its workers."""
    with s.client() as w:
        click.echo(f"cancelled {w.cancel_tasks(queue, task)}")


@main.command()
@click.argument("queue")
@settings
def delete(s: Settings, queue: str) -> None:
    """Delete QUEUE's queued tasks and tell its workers."""
    with s.client() as w:
        w.delete_queue(queue)
    click.echo(f"deleted {queue}")


@main.command()
@click.argument("queue")
@click.option("--requeue", is_flag=True, help="Move them back to the queue's tail.")
@click.option("--purge", is_flag=True, help="Drop them for good.")
@click.option("--task", default=None, help="Only the copies of this task.")
@settings
def dead(s: Settings, queue: str, requeue: bool, purge: bool, task: str | None) -> None:
    """List QUEUE's dead letters (with why each died, where recorded), or requeue/purge them."""
    if requeue and purge:
        raise click.ClickException("choose --requeue or --purge, not both")
    with s.client() as w:
        if requeue:
            click.echo(f"requeued {w.requeue_dead(queue, task)}")
        elif purge:
            click.echo(f"purged {w.purge_dead(queue, task)}")
        else:
            for d in w.get_dead(queue):
                click.echo(dead_line(d))


@main.command()
@click.option("--diagram", is_flag=True, help="Draw every key, as in diagrams/.")
@settings
def inspect(s: Settings, diagram: bool) -> None:
    """Show queues with their lengths and workers with their processes and heartbeat age."""
    with s.client() as w:
        if diagram:
            click.echo(render(w.snapshot()), nl=False)
        else:
            console.print(view(w))


@main.command()
@click.option(
    "--interval",
    default=1.0,
    type=POSITIVE,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option(
    "--iterations",
    default=0,
    type=click.IntRange(min=0),
    help="Stop after this many refreshes (0: never).",
)
@settings
def top(s: Settings, interval: float, iterations: int) -> None:
    """inspect, refreshing live until Ctrl-C."""
    with s.client() as w, Live(view(w), console=console, auto_refresh=False) as live:
        n = 1
        try:
            while not iterations or n < iterations:
                time.sleep(interval)
                live.update(view(w), refresh=True)
                n += 1
        except KeyboardInterrupt:
            pass


@main.command()
@click.option("--tasks", "count", default=300, show_default=True, help="Tasks to enqueue.")
@click.option("--workers", "nworkers", default=4, show_default=True, help="Worker processes.")
@click.option("--ms", default=20, show_default=True, help="Milliseconds each task takes.")
@settings
def demo(s: Settings, count: int, nworkers: int, ms: int) -> None:
    """Worker processes share a queue; one is SIGKILLed mid-task and a peer reclaims its work."""
    from .demo import run_demo

    sys.exit(run_demo(s.url, count, nworkers, ms, console))
