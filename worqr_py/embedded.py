"""``worqr_py.embedded``: a throwaway redis-server (kept at this path for the examples and
users; it lives in ``worqr_py.tools.embedded``)."""

from .tools.embedded import EmbeddedRedis, free_port, redis_binary, scrub, server_version

__all__ = ["EmbeddedRedis", "free_port", "redis_binary", "scrub", "server_version"]
