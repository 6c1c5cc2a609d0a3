"""Backends chosen by URL, and the process-wide default."""

from __future__ import annotations

import threading
from typing import Any

from .._clock import Clock, monotonic
from .._exceptions import ConfigurationError
from ._base import Backend
from ._memory import MemoryBackend
from ._urls import MemoryOptions, RedisOptions, mask_password, parse_url, validate_options

__all__ = ["backend_from_url", "default_backend", "resolve_backend"]

_default: MemoryBackend | None = None
_shared: dict[str, Backend] = {}
_lock = threading.Lock()


def backend_from_url(url: str, *, clock: Clock | None = None, **options: Any) -> Backend:
    """Build a backend from a URL such as ``memory://`` or ``redis://localhost:6379/0``.

    Options may be given in the query string (``?timeout=0.5&prefix=app``) or as keywords
    (which win). ``clock`` is only for ``memory://`` (tests pass a
    :class:`~resilience.FakeClock`). Each call returns a new backend with its own connection
    pool; share the object between primitives, or pass the URL string as ``backend=`` and the
    primitives share one backend per URL.

    Raises :class:`~resilience.ConfigurationError` for an unknown scheme (the message lists the
    known ones), a malformed URL or an invalid option.
    """
    parsed = parse_url(url)
    merged = {**parsed.options, **options}
    if parsed.topology == "memory":
        memory = validate_options(MemoryOptions, merged, url)
        return MemoryBackend(clock=clock or monotonic, prefix=memory.prefix)
    if clock is not None:
        raise ConfigurationError(
            "clock= applies to memory:// only; Redis scripts read the server's TIME"
        )
    redis_options: RedisOptions = validate_options(RedisOptions, merged, url)
    if parsed.topology == "sentinel" and not redis_options.service_name:
        raise ConfigurationError(f"{mask_password(url)} needs a service name")
    from ._redis import RedisBackend

    return RedisBackend(url, parsed, redis_options)


def default_backend() -> MemoryBackend:
    """The process-wide memory backend that primitives use when given no ``backend=``."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = MemoryBackend()
    return _default


def resolve_backend(backend: Backend | str | None) -> Backend:
    """Turn a primitive's ``backend=`` argument into a :class:`Backend`.

    ``None`` is the default memory backend; a URL string gives the one backend shared by every
    primitive created with that same string in this process.
    """
    if backend is None:
        return default_backend()
    if isinstance(backend, Backend):
        return backend
    if isinstance(backend, str):
        shared = _shared.get(backend)
        if shared is None:
            with _lock:
                shared = _shared.get(backend)
                if shared is None:
                    shared = _shared[backend] = backend_from_url(backend)
        return shared
    raise ConfigurationError(
        f"backend= takes a Backend, a URL string or None, not {type(backend).__name__}"
    )
