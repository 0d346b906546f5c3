"""``worqr schedules`` (list, add and remove the periodic schedules) and the worker's
``--retries``/``--backoff`` options; cli.py registers the group on ``worqr`` and puts the
options on ``worqr worker``. Expected failures are reported by cli.py's ``Cli`` group."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..runtime.retry import Retry
from .views import schedule_line
from .when import duration_option, durations_option, exact_duration, server_now

if TYPE_CHECKING:
    from .cli import Settings

F = TypeVar("F", bound=Callable[..., Any])


def not_empty(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """Click callback: a queue name, if given, must not be empty."""
    if value == "":
        raise click.BadParameter("a queue name must not be empty", ctx, param)
    return value


@click.group(invoke_without_command=True, short_help="List, add or remove periodic schedules.")
@click.option(
    "--queue", "-q", metavar="QUEUE", callback=not_empty, help="List only this queue's schedules."
)
@click.pass_context
def schedules(ctx: click.Context, queue: str | None) -> None:
    """List the periodic schedules (of every queue, or of --queue), by queue and name, one per
    line: queue, name, the task (if not the name), "every DURATION" or "cron 'EXPR' (UTC)",
    the fires so far, the last fire (UTC, and the worker that fired it) and the next one, with
    how long until then by the Redis server's clock. Prints nothing if there are none.

    \b
    worqr schedules [--queue QUEUE]
    worqr schedules add QUEUE TASK (--every DURATION | --cron EXPR) [--name NAME]
    worqr schedules remove QUEUE NAME

    The queue to list is an option, so a queue may be called "add" or "remove"."""
    if ctx.invoked_subcommand is not None:
        if queue is not None:
            raise click.UsageError(
                f"--queue only chooses what to list; {ctx.invoked_subcommand} takes QUEUE "
                "as its argument"
            )
        return
    s: Settings = ctx.obj
    with s.client() as w:
        found = w.get_schedules(queue)
        now = server_now(w)
        for sch in found:
            click.echo(schedule_line(sch, now))


# What a library error's first words name -> the parameter to blame (longest first).
BLAME = (
    ("name (the task) ", "task"),
    ("cron ", "cron"),
    ("every ", "every"),
    ("name ", "name"),
    ("task ", "task"),
    ("queue ", "queue"),
)


def bad_argument(ctx: click.Context, exc: Exception) -> click.UsageError:
    """The library's TypeError/ValueError (which names the argument first) as a usage error
    (exit status 2) naming the option or argument it is about."""
    message = str(exc)
    for start, name in BLAME:
        if message.startswith(start):
            for param in ctx.command.params:
                if param.name == name:
                    return click.BadParameter(message, ctx, param)
    return click.UsageError(message, ctx)


@schedules.command()
@click.argument("queue")
@click.argument("task")
@click.option(
    "--every",
    callback=duration_option,
    metavar="DURATION",
    help="Fire every DURATION (at least 1ms): 500ms, 30s, 5m, 1h30m, 1d, or seconds.",
)
@click.option(
    "--cron",
    metavar="EXPR",
    help="Fire at the times of this cron expression, in UTC ('*/5 * * * *').",
)
@click.option(
    "--name",
    metavar="NAME",
    help="What names the schedule in QUEUE (default: TASK); one set again replaces it.",
)
@click.pass_context
def add(
    ctx: click.Context,
    queue: str,
    task: str,
    every: float | None,
    cron: str | None,
    name: str | None,
) -> None:
    """Enqueue TASK to QUEUE every DURATION or at the cron times, from now on: the running
    workers fire it, once per fire time. Prints "set" if that created or changed the schedule,
    "unchanged" if it was already so."""
    if (every is None) == (cron is None):
        raise click.UsageError("give --every or --cron (exactly one)")
    s: Settings = ctx.obj
    with s.client() as w:
        try:
            changed = w.schedule(queue, task, every=every, cron=cron, name=name)
        except (TypeError, ValueError) as exc:  # checked before any write
            raise bad_argument(ctx, exc) from None
    click.echo("set" if changed else "unchanged")


@schedules.command()
@click.argument("queue")
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, queue: str, name: str) -> None:
    """Remove QUEUE's schedule NAME: it fires no more (the tasks it enqueued stay). Prints
    "removed", or "no such schedule" (exit status 0, as cancel finding nothing)."""
    s: Settings = ctx.obj
    with s.client() as w:
        try:
            removed = w.unschedule(queue, name)
        except (TypeError, ValueError) as exc:
            raise bad_argument(ctx, exc) from None
    click.echo("removed" if removed else "no such schedule")


def retry_options(f: F) -> F:
    """The worker's ``--retries N`` and ``--backoff DURATIONS``, given to ``f`` as one
    ``retry`` argument (see ``retry_policy``)."""

    @functools.wraps(f)
    def with_retry(
        *args: Any, retries: int | None, backoff: list[float] | None, **kwargs: Any
    ) -> Any:
        return f(*args, retry=retry_policy(retries, backoff), **kwargs)

    g = click.option(
        "--backoff",
        callback=durations_option,
        metavar="DURATIONS",
        help="With --retries: the wait before each retry, comma-separated (1,5s,1m; the last "
        "repeats). Default: exponential from 1s, at most 5m, with jitter.",
    )(with_retry)
    return click.option(  # type: ignore[return-value]
        "--retries",
        type=click.IntRange(min=0),
        default=None,
        metavar="N",
        help="Retry a task whose handler raised up to N times, each after a backoff (in the "
        "delayed set), then dead-letter it with the error. Without it, a failed task goes "
        "back to the front at once. Keep --max-deliveries above N + 1 (or 0).",
    )(g)


def retry_policy(retries: int | None, backoff: list[float] | None) -> Retry | None:
    """``--retries``/``--backoff`` as the ``retry=`` of ``run()``: None without --retries
    (--backoff alone is a usage error)."""
    if retries is None:
        if backoff is not None:
            raise click.UsageError("--backoff needs --retries")
        return None
    return Retry(max=retries, backoff=backoff)


def retry_text(retry: Retry | None) -> str:
    """A retry policy for the worker's start line: ``none``, ``3 (backoff 1s, 5s)``, or
    ``3 (backoff exponential)``."""
    if retry is None:
        return "none"
    waits = ", ".join(exact_duration(x) for x in retry.backoff or ()) or "exponential"
    return f"{retry.max} (backoff {waits})"
