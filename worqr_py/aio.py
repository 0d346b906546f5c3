"""``worqr_py.aio.Worqr``: the asyncio client under the name the README gives it."""

from .drivers import AsyncWorqr

Worqr = AsyncWorqr

__all__ = ["AsyncWorqr", "Worqr"]
