"""Backend URLs: the scheme table and the validated options.

Schemes (``valkey`` spellings are aliases of the ``redis`` ones)::

    memory://
    redis://[[user]:password@]host[:port][/db]        valkey://...
    rediss://...                 (TLS)                valkeys://...
    redis+unix:///path/to.sock[?db=N]                 valkey+unix://...
    redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]
    redis+cluster://[[user]:password@]host:port[,host:port...]

Options come from the query string or keyword arguments (keywords win), and are validated by
:class:`RedisOptions`; an unknown option or scheme raises :class:`~resilience.ConfigurationError`
naming the known ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._exceptions import ConfigurationError

__all__ = ["SCHEMES", "ParsedURL", "RedisOptions", "mask_password", "parse_url"]

Topology = Literal["memory", "standalone", "unix", "sentinel", "cluster"]

#: Every scheme we accept and the topology it means.
SCHEMES: dict[str, tuple[Topology, bool]] = {
    "memory": ("memory", False),
    "redis": ("standalone", False),
    "rediss": ("standalone", True),
    "redis+unix": ("unix", False),
    "redis+sentinel": ("sentinel", False),
    "redis+cluster": ("cluster", False),
    "valkey": ("standalone", False),
    "valkeys": ("standalone", True),
    "valkey+unix": ("unix", False),
    "valkey+sentinel": ("sentinel", False),
    "valkey+cluster": ("cluster", False),
}

_PREFIX_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"


class MemoryOptions(BaseModel):
    """Options of ``memory://``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field("resilience", pattern=_PREFIX_PATTERN)


class RedisOptions(BaseModel):
    """Options of the Redis backends (query string or keyword arguments).

    ``timeout`` bounds every command (socket read/write); ``connect_timeout`` bounds opening a
    connection; ``probe_interval`` is how long calls are short-circuited after a failure before
    the server is tried again; ``client_options`` go to redis-py as they are (TLS files, etc.).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field("resilience", pattern=_PREFIX_PATTERN)
    timeout: float = Field(1.0, gt=0, le=300)
    connect_timeout: float | None = Field(None, gt=0, le=300)
    probe_interval: float = Field(1.0, ge=0, le=3600)
    max_connections: int = Field(64, ge=1, le=100_000)
    db: int = Field(0, ge=0, le=1_000_000)
    service_name: str | None = None
    sentinel_password: str | None = None
    client_options: dict[str, Any] = Field(default_factory=dict)
    #: Tests only: scripts add :attr:`RedisBackend.clock_offset` to the server time.
    test_clock: bool = False


@dataclass(frozen=True)
class ParsedURL:
    """A URL split into what the backends need."""

    scheme: str
    topology: Topology
    tls: bool
    hosts: list[tuple[str, int]] = field(default_factory=list)
    path: str = ""
    username: str | None = None
    password: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def mask_password(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    hosts = []
    for item in netloc.split(","):
        if not item:
            raise ConfigurationError("empty host in backend URL")
        if item.startswith("["):  # IPv6 literal
            host, _, rest = item[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
        if not host:
            raise ConfigurationError(f"missing host in {item!r}")
        try:
            hosts.append((host, int(port) if port else default_port))
        except ValueError:
            raise ConfigurationError(f"bad port in {item!r}") from None
    return hosts


def parse_url(url: str) -> ParsedURL:
    """Split ``url``; raise :class:`~resilience.ConfigurationError` for anything unknown."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"backend URL {url!r} has no scheme; known schemes: {', '.join(SCHEMES)}"
        )
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"unknown backend URL scheme {scheme!r}; known schemes: {', '.join(SCHEMES)}"
        )
    topology, tls = SCHEMES[scheme]
    netloc_path, _, query = rest.partition("?")
    options: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False))
    netloc, _, path = netloc_path.partition("/")
    username = password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        user, sep, pw = auth.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if sep else None
    if topology == "memory":
        if netloc or path.strip("/"):
            raise ConfigurationError(f"memory:// takes no host or path, got {url!r}")
        return ParsedURL(scheme, topology, tls, options=options)
    if topology == "unix":
        if not path:
            raise ConfigurationError(f"{scheme}:// needs a socket path: {scheme}:///path/to.sock")
        return ParsedURL(scheme, topology, tls, [], "/" + path, username, password, options)
    if not netloc:
        raise ConfigurationError(f"{url!r} names no host")
    hosts = _hosts(netloc, 26379 if topology == "sentinel" else 6379)
    segments = [s for s in path.split("/") if s]
    if topology == "sentinel":
        if not segments:
            raise ConfigurationError(
                f"{scheme}:// needs a service name: {scheme}://host:26379/mymaster"
            )
        options.setdefault("service_name", unquote(segments.pop(0)))
    if topology in ("standalone", "sentinel") and segments:
        options.setdefault("db", segments.pop(0))
    if segments:
        raise ConfigurationError(f"unexpected path {path!r} in {url!r}")
    if topology == "standalone" and len(hosts) > 1:
        raise ConfigurationError(f"{scheme}:// takes one host; use redis+cluster:// for several")
    return ParsedURL(scheme, topology, tls, hosts, "", username, password, options)


def validate_options(model: type[BaseModel], options: dict[str, Any], url: str) -> Any:
    """Validate ``options`` with ``model`` and turn failures into a ConfigurationError."""
    try:
        return model.model_validate(options)
    except ValidationError as error:
        known = ", ".join(model.model_fields)
        raise ConfigurationError(
            f"invalid options for {mask_password(url)}: {error}\nknown options: {known}"
        ) from None
