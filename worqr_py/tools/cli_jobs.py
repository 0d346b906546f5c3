"""``worqr job ID`` (one job's record, as text or JSON; ``--cancel`` cancels it) and ``worqr
jobs QUEUE`` (a queue's jobs, one per line, newest first); cli.py registers both on
``worqr``. Expected failures (Redis down...) are reported by cli.py's ``Cli`` group.

Times are the Redis server's clock: a job's record is stamped by it, and "how long ago" is
measured from its TIME, not this machine's clock."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import click

from ..core.jobs import STATUSES, JobInfo, JobOps
from .views import one_line
from .when import fmt_duration, iso_utc, server_now, until

if TYPE_CHECKING:
    from .cli import Settings

CALL_CHARS = 500  # of a call, a result or an error message in ``worqr job``
LIST_CALL_CHARS = 60  # of a call on a line of ``worqr jobs``
WHEN_WIDTH = len("enqueued 23h59m ago")


def cut(text: str, limit: int, end: str = "") -> str:
    """``text`` if it has at most ``limit`` characters, else its start, ``...`` and ``end``
    (so a cut call still ends with its ``)``), ``limit`` characters in all."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 3 - len(end))] + "..." + end


def call_text(info: JobInfo, limit: int = CALL_CHARS) -> str:
    """A job's call as Python would write it, ``add(1, 2, z='x')``, on one line (the
    arguments as ``repr``, the function as ``one_line``), cut to ``limit`` characters."""
    parts = [repr(a) for a in info.args] + [f"{k}={v!r}" for k, v in info.kwargs.items()]
    return cut(f"{one_line(info.function)}({', '.join(parts)})", limit, ")")


def error_text(info: JobInfo) -> str:
    """A job's error as one line, ``ValueError: bad`` (escaped and cut as a dead letter's
    reason), or ``""`` if it has none."""
    if info.error is None:
        return ""
    why = ": ".join(x for x in (info.error.type, info.error.message) if x)
    return cut(why if why.isprintable() else repr(why)[1:-1], CALL_CHARS)


def ago(at: float, now: float) -> str:
    """``"12.5s ago"`` (from ``now``, the server's clock); ``"in 2s"`` for a time after it."""
    return f"{fmt_duration(now - at)} ago" if at <= now else until(at, now)


def latest(info: JobInfo, now: float) -> str:
    """The job's latest event and how long ago: ``ended 3s ago`` (an ended job), else
    ``started 1m2s ago`` (running, or its last try), else ``enqueued 5s ago``."""
    for name, at in (
        ("ended", info.ended_at if info.ended else None),
        ("started", info.started_at),
        ("enqueued", info.enqueued_at),
    ):
        if at is not None:
            return f"{name} {ago(at, now)}"
    return ""


def job_line(info: JobInfo, now: float, id_width: int = 0) -> str:
    """A job as one line of ``worqr jobs``: its id (padded to ``id_width``), status,
    attempts, latest event (``latest``) and its call (cut to ``LIST_CALL_CHARS``)."""
    return (
        f"{one_line(info.id):<{id_width}}  {info.status:<9}  attempts {info.attempts:<2}  "
        f"{latest(info, now):<{WHEN_WIDTH}}  {call_text(info, LIST_CALL_CHARS)}"
    )


def job_lines(info: JobInfo, now: float, traceback: bool = False) -> list[str]:
    """A job as ``worqr job`` prints it: one ``field  value`` line each for its id, status,
    call, attempts, worker, enqueued/started times (ISO 8601 UTC, with how long ago, and how
    long it waited to start), when it ended and how long it ran, its result or error,
    options and when its record expires. With ``traceback``: the error's traceback last."""
    ended = info.ended

    def at(t: float | None, note: str = "") -> str:
        return "-" if t is None else f"{iso_utc(t)}  ({note or ago(t, now)})"

    started, waited = info.started_at, None
    if started is not None and info.enqueued_at is not None and started >= info.enqueued_at:
        waited = f"waited {fmt_duration(started - info.enqueued_at)}"
    rows = [
        ("id", one_line(info.id)),
        ("status", info.status),
        ("call", call_text(info)),
        ("attempts", str(info.attempts)),
        ("worker", one_line(info.worker) if info.worker else "-"),
        ("enqueued", at(info.enqueued_at)),
        ("started", at(started, waited or "")),
    ]
    if ended:
        ran = None
        if info.ended_at is not None and started is not None and info.ended_at >= started:
            ran = f"ran {fmt_duration(info.ended_at - started)}"
        rows.append(("ended", at(info.ended_at, ran or "")))
    if info.status == "finished":
        rows.append(("result", cut(repr(info.result), CALL_CHARS)))
    if info.error is not None:
        rows.append(("error" if ended else "last error", error_text(info)))
    if info.options:
        rows.append(("options", cut(json.dumps(info.options), CALL_CHARS)))
    if info.expires_at is not None:
        rows.append(("expires", f"{iso_utc(info.expires_at)}  ({until(info.expires_at, now)})"))
    elif ended:
        rows.append(("expires", "never (kept until its queue is deleted)"))
    lines = [f"{name:<9} {value}" if value else name for name, value in rows]
    if traceback and info.error is not None:
        lines.append("traceback" if info.error.traceback else "traceback (none recorded)")
        lines += info.error.traceback.rstrip("\n").splitlines()
    elif info.error is not None and info.error.traceback:
        lines.append("(--traceback shows the traceback)")
    return lines


def job_json(info: JobInfo) -> str:
    """A job's record as indented JSON: ``JobInfo``'s fields (times in seconds since the
    epoch; ``error`` an object or null). What JSON cannot hold is written as its ``repr``."""
    return json.dumps(dataclasses.asdict(info), indent=2, default=repr)


def job_id_arg(ctx: click.Context, param: click.Parameter, value: str) -> Any:
    """Click callback: a job id must read as ``<queue>@<key>`` (a usage error if not)."""
    try:
        JobOps.parse_job_id(value)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


@click.command(short_help="Show one job, or --cancel it.")
@click.argument("job_id", metavar="ID", callback=job_id_arg)
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@click.option("--traceback", is_flag=True, help="Also print the error's traceback.")
@click.option("--cancel", is_flag=True, help="Cancel the job if it is queued or scheduled.")
@click.pass_obj
def job(s: Settings, job_id: str, as_json: bool, traceback: bool, cancel: bool) -> None:
    """Show the job ID (<queue>@<key>, as submit returned it): status, call, attempts, worker,
    when it was enqueued, started (and how long it waited) and ended (and how long it ran),
    its result or error, and when its record expires. Exit status 1 if there is no such job
    (never submitted, expired, or its queue deleted).

    With --cancel: cancel it if it is queued or scheduled (it leaves its queue and becomes
    cancelled) and print "cancelled ID", or why not ("not cancelled: ID is started", exit
    status 0); a started job is its worker's and runs on."""
    if cancel and (as_json or traceback):
        raise click.UsageError("--cancel prints only whether it cancelled; drop --json/--traceback")
    with s.client() as w:
        if cancel and w.cancel_job(job_id):
            click.echo(f"cancelled {one_line(job_id)}")
            return
        info = w.get_job(job_id)
        if info is None:
            raise click.ClickException(
                f"no such job: {one_line(job_id)} (never submitted, expired, or its queue deleted)"
            )
        if cancel:
            click.echo(
                f"not cancelled: {one_line(job_id)} is {info.status} (only a queued or "
                "scheduled job can be)"
            )
        elif as_json:
            click.echo(job_json(info))
        else:
            click.echo("\n".join(job_lines(info, server_now(w), traceback)))


@click.command(short_help="List a queue's jobs, newest first (--status, --limit).")
@click.argument("queue")
@click.option("--status", "-s", type=click.Choice(STATUSES), help="Only the jobs with this status.")
@click.option(
    "--limit",
    "-n",
    default=100,
    type=click.IntRange(min=1),
    show_default=True,
    help="List at most this many.",
)
@click.pass_obj
def jobs(s: Settings, queue: str, status: str | None, limit: int) -> None:
    """List QUEUE's jobs (with --status, those with it), newest first, one per line: id,
    status, attempts, the latest of ended/started/enqueued and how long ago (by the Redis
    server's clock), and the call (cut). With none, says "no jobs" on stderr (stdout stays
    empty). The --limit newest, by enqueue time; a scan of the queue's job records, for
    inspection."""
    with s.client() as w:
        found = w.get_jobs(queue, status=status, limit=limit)
        now = server_now(w)
    if not found:
        click.echo(
            f"no jobs{f' with status {status}' if status else ''} on {one_line(queue)}", err=True
        )
        return
    width = max(len(one_line(j.id)) for j in found)
    for info in found:
        click.echo(job_line(info, now, width))
    if len(found) == limit:
        click.echo(f"(--limit {limit} reached: there may be more)", err=True)
