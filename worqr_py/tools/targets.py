"""What ``worqr worker`` runs: a handler named ``module:function``, or (``--jobs``) the job
functions of a module. The current directory is importable, as for ``python -m``."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import click

from ..core.model import Process


def _module(name: str) -> ModuleType:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise click.ClickException(f"cannot import {name!r}: {exc}") from None


def load(target: str) -> Callable[[Process], Any]:
    """``module:function`` -> the function."""
    module, _, name = target.partition(":")
    if not module or not name:
        raise click.ClickException(f"expected module:function, got {target!r}")
    try:
        found = getattr(_module(module), name)
    except AttributeError:
        raise click.ClickException(f"module {module!r} has no {name!r}") from None
    if not callable(found):
        raise click.ClickException(f"{target} is not callable")
    return found  # type: ignore[no-any-return]


def load_jobs(target: str) -> dict[str, Callable[..., Any]]:
    """A module's job functions, by name: its ``JOBS`` mapping if it has one, else every
    public function defined in it (not imported into it)."""
    if ":" in target:
        raise click.ClickException(f"--jobs takes a module (its JOBS or functions), got {target!r}")
    module = _module(target)
    table = getattr(module, "JOBS", None)
    if table is not None:
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and callable(f) for k, f in table.items()
        ):
            raise click.ClickException(f"{target}.JOBS must map names to functions")
        found = dict(table)
    else:
        found = {
            name: f
            for name, f in vars(module).items()
            if not name.startswith("_")
            and (inspect.isfunction(f) or inspect.iscoroutinefunction(f))
            and f.__module__ == module.__name__
        }
    if not found:
        raise click.ClickException(f"module {target!r} has no JOBS and no public functions")
    return found
