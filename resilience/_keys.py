"""Key naming and escaping.

Every key a backend stores is ``prefix:kind:{name}:part[:part...]``. The braces hold the Redis
Cluster hash tag, so all keys of one primitive instance live in one slot and each script touches
exactly one slot.

User-supplied parts (the instance name, a rate-limit key such as a user id or an IP) are never
trusted: :func:`escape` maps any ``str`` or ``bytes`` to a token made only of
``[A-Za-z0-9_.~%-]``. The mapping is injective:

- short parts are percent-encoded (``user:42`` becomes ``user%3A42``), so ``:``, ``{``, ``}``,
  whitespace and control characters can never appear raw;
- parts longer than :data:`MAX_PART` bytes once encoded become ``~`` plus the hex SHA-256 of the
  raw bytes; ``~`` is escaped in the first form, so the two forms never meet;
- the empty part becomes ``~`` alone (a Redis hash tag is never empty, so ``{}`` cannot
  spread one instance over several Cluster slots);
- ``str`` and ``bytes`` stay apart: a ``str`` is encoded as UTF-8 (lone surrogates allowed),
  ``bytes`` get a ``%b`` marker first (``%`` never starts an encoded ``str`` part unless it came
  from a real ``%`` which is encoded as ``%25``).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from urllib.parse import quote_from_bytes

__all__ = ["MAX_PART", "escape", "make_key"]

#: Longest encoded part kept readable; longer parts are hashed.
MAX_PART = 128

_SAFE = "-_."  # plus ASCII letters and digits, which quote never touches


@lru_cache(maxsize=8192)
def _escape_str(part: str) -> str:
    return _escape_bytes(part.encode("utf-8", "surrogatepass"), "")


def _escape_bytes(raw: bytes, marker: str) -> str:
    if not raw and not marker:
        return "~"
    encoded = marker + quote_from_bytes(raw, safe=_SAFE).replace("~", "%7E")
    if len(encoded) > MAX_PART:
        return "~" + hashlib.sha256(marker.encode() + raw).hexdigest()
    return encoded


def escape(part: str | bytes | int) -> str:
    """Return the safe, injective token for one user-supplied key part."""
    if isinstance(part, str):
        return _escape_str(part)
    if isinstance(part, bytes):
        return _escape_bytes(part, "%b")
    if isinstance(part, int) and not isinstance(part, bool):
        return _escape_str(str(part))
    raise TypeError(f"key parts are str, bytes or int, not {type(part).__name__}")


def make_key(prefix: str, kind: str, name: str | bytes, *parts: str | bytes | int) -> str:
    """Build ``prefix:kind:{name}:part...`` with the name and every part escaped.

    ``prefix`` and ``kind`` come from the library and the backend configuration (validated
    there), not from request data.
    """
    key = f"{prefix}:{kind}:{{{escape(name)}}}"
    if parts:
        key += ":" + ":".join([escape(p) for p in parts])
    return key
