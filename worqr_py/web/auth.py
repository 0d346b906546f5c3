"""Who may act on the dashboard: pure functions over one secret, no I/O.

The dashboard is read-only unless it was given a token. A browser that posts the token to
``/login`` gets a session cookie: a random nonce and its HMAC under a key derived from the
token (so any dashboard process with the same token accepts it, and none without it can
forge one); it says when it was issued and is refused 12 hours later (logging out clears
it from the browser; to revoke every session at once, change the token). Every action form
carries a CSRF field, the HMAC of the session's nonce under a
second derivation: another site can make a browser post, but cannot read the field. An
action is refused (403, nothing written) unless both verify.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

COOKIE = "worqr_session"
MIN_TOKEN = 8  # characters
SESSION_S = 12 * 3600  # a session cookie is good for this long after its login


class Guard:
    """The token check, the session cookie and the CSRF field of one dashboard."""

    def __init__(self, token: str | None) -> None:
        if token is not None and (not isinstance(token, str) or len(token) < MIN_TOKEN):
            raise ValueError(f"token must be None or a str of at least {MIN_TOKEN} characters")
        self.token = token
        seed = (token or "").encode()
        self._key = hmac.new(seed, b"worqr dashboard session", hashlib.sha256).digest()

    @property
    def enabled(self) -> bool:
        """Whether actions are possible at all (a token was given)."""
        return self.token is not None

    def _sign(self, kind: str, nonce: str) -> str:
        return hmac.new(self._key, f"{kind}:{nonce}".encode(), hashlib.sha256).hexdigest()

    def login(self, offered: str, now: float | None = None) -> str | None:
        """A new session cookie value if ``offered`` is the token, else None: a random
        nonce, the login time and their HMAC."""
        if self.token is None or not _same(offered, self.token):
            return None
        nonce = f"{secrets.token_hex(16)}-{int(time.time() if now is None else now)}"
        return f"{nonce}.{self._sign('session', nonce)}"

    def session(self, cookie: str | None, now: float | None = None) -> str | None:
        """The nonce of a valid session cookie less than ``SESSION_S`` old, else None."""
        if self.token is None or not cookie:
            return None
        nonce, _, mac = cookie.partition(".")
        if not nonce or not _same(mac, self._sign("session", nonce)):
            return None
        issued = nonce.rpartition("-")[2]
        age = (time.time() if now is None else now) - (int(issued) if issued.isdigit() else 0)
        return nonce if 0 <= age < SESSION_S else None

    def csrf(self, nonce: str) -> str:
        """The CSRF field the session ``nonce``'s forms carry."""
        return self._sign("csrf", nonce)

    def allows(self, cookie: str | None, field: str | None) -> bool:
        """Whether a POST with this session cookie and CSRF field may act."""
        nonce = self.session(cookie)
        return nonce is not None and field is not None and _same(field, self.csrf(nonce))


def _same(given: str, expected: str) -> bool:
    """A constant-time comparison that any text may be given to (non-ASCII included)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())
