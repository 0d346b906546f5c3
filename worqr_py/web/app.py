"""The dashboard as an ASGI app (Starlette + Jinja2 + a vendored htmx): pages, live partials,
actions and ``/metrics``. ``app(worqr)`` builds it for a client of yours, to mount in your
own Starlette or FastAPI service; ``worqr dashboard`` serves one with uvicorn.

Secure by default: read-only unless a token is given; actions are POST only, need the
session of a browser that logged in with the token and the form's CSRF field (``auth.py``),
and each is logged (logger ``worqr_py.web``). Every page is rendered with autoescaping, so a
task or queue name is shown as text, whatever it holds; a Content-Security-Policy lets the
page run only its own script.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, FileSystemLoader
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..core.jobs import STATUSES
from ..core.keys import JOB_MARK
from ..core.redact import redact
from ..errors import WorqrError
from . import metrics, views
from .auth import COOKIE, SESSION_S, Guard

log = logging.getLogger("worqr_py.web")
HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
REFRESH_S = 1  # how often the live parts of a page ask again
JOBS_REFRESH_S = 10  # the jobs page's: each is a scan of the queue's job records

Handler = Callable[[Request], Awaitable[Response]]


class _Headers(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        return response


def app(
    worqr: Any, *, token: str | None = None, title: str = "worqr", close: bool = False
) -> Starlette:
    """The dashboard for ``worqr`` (a ``Worqr`` or an ``AsyncWorqr``: its prefix is the one
    shown). Read-only unless ``token`` (8 characters or more) is given; then a browser that
    logs in with it may requeue or purge dead letters, cancel tasks and jobs, delete queues
    and fail workers. ``close``: close the client when the app shuts down (the CLI's own).
    Reads Redis on every request and writes only through those actions."""
    guard = Guard(token)
    src = views.Source(worqr)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    env.globals.update(title=title, refresh=REFRESH_S, jobs_refresh=JOBS_REFRESH_S)
    env.globals.update(statuses=STATUSES)
    env.filters["task"] = shown_task
    env.filters["call"] = shown_call
    env.filters["value"] = shown_value

    def render(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
        nonce = guard.session(request.cookies.get(COOKIE))
        root = _root(request)
        context.update(
            root=root,
            read_only=not guard.enabled,
            authed=nonce is not None,
            csrf=guard.csrf(nonce) if nonce else "",
            next=_page_of(request),
        )
        return HTMLResponse(env.get_template(template).render(**context), status_code=code)

    def page(template: str, read: Callable[[Request], Awaitable[dict[str, Any]]]) -> Handler:
        partial = template.startswith("_")

        async def handler(request: Request) -> Response:
            shown = "_error.html" if partial else "error.html"
            try:
                return render(request, template, **(await read(request)))
            except (ValueError, TypeError) as exc:
                return render(request, shown, 400, message=str(exc))
            except (RedisError, WorqrError, OSError) as exc:
                log.warning("dashboard read failed: %s", redact(str(exc)))
                return render(request, shown, 503, message=f"Redis unreachable: {redact(str(exc))}")

        return handler

    async def queues(request: Request) -> dict[str, Any]:
        return {"rows": await views.queue_rows(src)}

    async def queue(request: Request) -> dict[str, Any]:
        name = request.query_params.get("name", "")
        return {"name": name, **(await views.queue_page(src, name))}

    async def workers(request: Request) -> dict[str, Any]:
        return {"overview": await src("overview")}

    async def jobs(request: Request) -> dict[str, Any]:
        status = request.query_params.get("status") or None
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        return await views.jobs_page(src, request.query_params.get("queue") or None, status)

    async def home(request: Request) -> Response:
        return RedirectResponse(_root(request) + "/queues", 303)

    async def login_form(request: Request) -> Response:
        return render(request, "login.html")

    async def login(request: Request) -> Response:
        try:
            cookie = guard.login((await _form(request)).get("token", ""))
        except ValueError:
            cookie = None
        client = request.client.host if request.client else "?"
        if cookie is None:
            log.warning("dashboard login refused from %s", client)
            return render(request, "login.html", 403 if guard.enabled else 404, refused=True)
        log.info("dashboard login from %s", client)
        root = _root(request)
        response = RedirectResponse(root + "/queues", 303)
        secure = request.url.scheme == "https"
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=SESSION_S,
            httponly=True,
            samesite="strict",
            secure=secure,
            path=root or "/",
        )
        return response

    async def logout(request: Request) -> Response:
        root = _root(request)
        response = RedirectResponse(root + "/queues", 303)
        response.delete_cookie(COOKIE, path=root or "/")
        return response

    async def act(request: Request) -> Response:
        action = request.path_params["action"]
        try:
            fields = await _form(request)
        except ValueError as exc:
            return render(request, "error.html", 400, message=str(exc))
        client = request.client.host if request.client else "?"
        if not guard.allows(request.cookies.get(COOKIE), fields.get("csrf")):
            log.warning("dashboard action %s refused from %s (no session or CSRF)", action, client)
            why = (
                "read-only: start the dashboard with a token"
                if not guard.enabled
                else ("log in with the dashboard's token first")
            )
            return render(request, "error.html", 403, message=f"refused: {why}")
        try:
            done = await _perform(src, action, fields)
        except (ValueError, TypeError) as exc:
            return render(request, "error.html", 400, message=str(exc))
        except (RedisError, WorqrError, OSError) as exc:
            message = f"Redis unreachable: {redact(str(exc))}"
            return render(request, "error.html", 503, message=message)
        log.info("dashboard action %s %s by %s: %s", action, _target(fields), client, done)
        return RedirectResponse(_next(request, fields.get("next", "")), 303)

    async def scrape(request: Request) -> Response:
        """The metrics; with Redis unreachable, a one-line 503 (a failed scrape) as the
        pages answer, not a 500 with a logged traceback."""
        try:
            stats, overview = await src("queue_stats"), await src("overview")
        except (RedisError, WorqrError, OSError) as exc:
            log.warning("metrics read failed: %s", redact(str(exc)))
            message = f"Redis unreachable: {redact(str(exc))}\n"
            return Response(message, 503, media_type="text/plain; charset=utf-8")
        return Response(metrics.render(stats, overview), media_type=metrics.CONTENT_TYPE)

    routes = [
        Route("/", home),
        Route("/queues", page("queues.html", queues)),
        Route("/partials/queues", page("_queues.html", queues)),
        Route("/queue", page("queue.html", queue)),
        Route("/partials/queue", page("_queue.html", queue)),
        Route("/workers", page("workers.html", workers)),
        Route("/partials/workers", page("_workers.html", workers)),
        Route("/jobs", page("jobs.html", jobs)),
        Route("/partials/jobs", page("_jobs.html", jobs)),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/actions/{action}", act, methods=["POST"]),
        Route("/metrics", scrape),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if close:
                await src("close")

    return Starlette(routes=routes, middleware=[Middleware(_Headers)], lifespan=lifespan)


def shown_value(value: Any) -> str:
    """A job's argument or result as text: JSON, or its ``repr`` where JSON has no word for
    it (a serializer of your own's values); the template escapes it."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def shown_call(job: Any) -> str:
    """A job's call as text: ``function(arg, ..., name=value, ...)``."""
    args = [shown_value(a) for a in job.args]
    args += [f"{k}={shown_value(v)}" for k, v in job.kwargs.items()]
    return f"{job.function}({', '.join(args)})"


def shown_task(task: str) -> str:
    """A task as the page shows it: a job's (``"\x1f" + key``) as ``job <key>``."""
    return f"job {task[1:]}" if task.startswith(JOB_MARK) else task


async def _perform(src: views.Source, action: str, f: dict[str, str]) -> Any:
    """Run one action; ValueError for an unknown action or a missing field."""

    def field(name: str) -> str:
        if name not in f:
            raise ValueError(f"missing form field {name!r}")
        return f[name]

    if action == "requeue-dead":
        return await src("requeue_dead", field("queue"), f.get("task") or None)
    if action == "purge-dead":
        return await src("purge_dead", field("queue"), f.get("task") or None)
    if action == "cancel-task":
        return await src("cancel_tasks", field("queue"), field("task"))
    if action == "delete-queue":
        return await src("delete_queue", field("queue"))
    if action == "fail-worker":
        return await src("fail_worker", field("worker"))
    if action == "cancel-job":
        return await src("cancel_job", field("job"))
    raise ValueError(f"no such action: {action!r}")


async def _form(request: Request) -> dict[str, str]:
    """A posted form (``application/x-www-form-urlencoded``, what the pages send; at most
    64 KiB): each field's first value."""
    body = await request.body()
    if len(body) > 65536:
        raise ValueError("form too large")
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


def _root(request: Request) -> str:
    """Where the app is mounted ("" at the top): every link and redirect starts with it."""
    return str(request.scope.get("root_path", ""))


def _page_of(request: Request) -> str:
    """The page a request shows (a live partial's page): where its actions return."""
    root = _root(request)
    path = request.url.path
    if path.startswith(root + "/partials/"):
        path = root + "/" + path[len(root + "/partials/") :]
    return path + (f"?{request.url.query}" if request.url.query else "")


def _target(f: dict[str, str]) -> str:
    return " ".join(f"{k}={f[k]!r}" for k in ("queue", "task", "worker", "job") if k in f)


def _next(request: Request, wanted: str) -> str:
    """Where an action returns: the page it came from, if it is one of ours."""
    root = _root(request)
    if wanted.startswith(root + "/") and not wanted.startswith("//") and "\\" not in wanted:
        return wanted
    return root + "/queues"
