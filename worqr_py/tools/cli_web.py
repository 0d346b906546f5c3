"""``worqr dashboard``: serve the web dashboard and ``/metrics`` (``worqr_py.web``) with
uvicorn; cli.py registers it on ``worqr``. It needs the ``web`` extra."""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from .cli import Settings

DEFAULT_BIND = "127.0.0.1:8900"
TOKEN_ENV = "WORQR_DASHBOARD_TOKEN"


def parse_bind(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as (host, port); ValueError naming ``--bind``."""
    host, colon, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--bind must be host:port, got {value!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command(short_help="Serve the web dashboard and /metrics (the web extra).")
@click.option("--bind", default=DEFAULT_BIND, show_default=True, help="host:port to listen on.")
@click.option(
    "--token-env",
    default=TOKEN_ENV,
    show_default=True,
    help="The environment variable holding the token that allows actions (unset: read-only).",
)
@click.pass_obj
def dashboard(s: Settings, bind: str, token_env: str) -> None:
    """Serve the dashboard: queues, one queue, workers and jobs, updated live, and /metrics
    for Prometheus. Read-only unless the variable named by --token-env holds a token (8
    characters or more); a browser that logs in with it may requeue or purge dead letters,
    cancel tasks and jobs, delete queues and fail workers, each action logged. Binds to
    localhost unless told otherwise."""
    try:
        import uvicorn

        from ..aio import AsyncWorqr
        from ..web import app
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"the dashboard needs the web extra ({exc.name} is missing): "
            "pip install 'worqr_py[web]'"
        ) from None
    try:
        host, port = parse_bind(bind)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    token = os.environ.get(token_env) or None
    site = app(AsyncWorqr(s.url, prefix=s.prefix), token=token, close=True)
    mode = "actions allowed after logging in with the token" if token else "read-only"
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"worqr dashboard on http://{shown}:{port}/ ({mode})", err=True)
    if not is_loopback(host):
        click.echo("warning: listening beyond this machine; put TLS in front of it", err=True)
    uvicorn.run(site, host=host, port=port, log_level="warning")
