"""An optional web dashboard and Prometheus metrics for worqr_py (``pip install
'worqr_py[web]'``: Starlette, Jinja2, uvicorn, prometheus-client; htmx is vendored, so the
page works offline). The core library does not depend on any of them.

    from worqr_py.web import app
    dashboard = app(AsyncWorqr(url), token=os.environ["WORQR_DASHBOARD_TOKEN"])
    service.mount("/worqr", dashboard)            # a Starlette or FastAPI app of yours

or ``worqr dashboard [--bind 127.0.0.1:8900] [--token-env VAR]``.
"""

from __future__ import annotations

from .app import app

__all__ = ["app"]
