"""Masking credentials in Redis URLs before they are printed or logged.

``redact_url("redis://:s3cret@host:6379/0")`` is ``"redis://***@host:6379/0"``; a
``password=`` (or ``username=``) query parameter is masked too. ``redact(text)`` masks every
URL found in a message, for errors whose text may quote one.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

MASK = "***"
_SECRET_PARAMS = {"password", "username"}
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """``url`` with any user and password replaced by ``***``; everything else unchanged.

    Everything between ``://`` and the last ``@`` before the query is masked, so a password
    that was not percent-encoded (one holding ``/`` or ``@``) is masked whole too. An ``@``
    after a ``?`` or ``#`` leaves no telling where a password ends (one holding ``?`` or
    ``#``, or a query value holding ``@``): all but the scheme is masked then."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    ends = [i for i in (rest.find("?"), rest.find("#")) if i >= 0]
    if ends and "@" in rest[min(ends) :]:
        return f"{scheme}{sep}{MASK}"
    body, q, tail = rest.partition("?")
    if "@" in body.partition("#")[0]:
        body = f"{MASK}@{body.rpartition('@')[2]}"
    if q:
        query, hash_, fragment = tail.partition("#")
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            masked = [(k, MASK if k.lower() in _SECRET_PARAMS else v) for k, v in pairs]
            tail = urlencode(masked, safe="*") + hash_ + fragment
    return f"{scheme}{sep}{body}{q}{tail}"


def redact(text: str) -> str:
    """``text`` with every URL in it passed through :func:`redact_url`."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)
