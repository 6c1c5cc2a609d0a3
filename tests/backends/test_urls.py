"""Every URL form maps to the right backend; bad URLs fail clearly."""

from __future__ import annotations

import pytest

from resilience import ConfigurationError, MemoryBackend, backend_from_url
from resilience._backends import resolve_backend
from resilience._backends._redis import RedisBackend
from resilience._backends._urls import SCHEMES, mask_password, parse_url


@pytest.mark.parametrize(
    ("url", "topology", "tls", "hosts"),
    [
        ("redis://localhost", "standalone", False, [("localhost", 6379)]),
        ("redis://:pw@h:7000/3", "standalone", False, [("h", 7000)]),
        ("rediss://h:6380/0", "standalone", True, [("h", 6380)]),
        ("valkey://h", "standalone", False, [("h", 6379)]),
        ("valkeys://h", "standalone", True, [("h", 6379)]),
        ("redis+unix:///tmp/r.sock?db=2", "unix", False, []),
        ("valkey+unix:///tmp/r.sock", "unix", False, []),
        (
            "redis+sentinel://s1:26379,s2/mymaster/1",
            "sentinel",
            False,
            [("s1", 26379), ("s2", 26379)],
        ),
        ("valkey+sentinel://s1/mymaster", "sentinel", False, [("s1", 26379)]),
        ("redis+cluster://a:7000,b:7001", "cluster", False, [("a", 7000), ("b", 7001)]),
        ("valkey+cluster://[::1]:7000", "cluster", False, [("::1", 7000)]),
    ],
)
def test_each_scheme_maps_to_its_topology(
    url: str, topology: str, tls: bool, hosts: list[tuple[str, int]]
) -> None:
    parsed = parse_url(url)
    assert (parsed.topology, parsed.tls, parsed.hosts) == (topology, tls, hosts)
    backend = backend_from_url(url)  # building a Redis backend opens no connection
    assert isinstance(backend, RedisBackend)
    assert backend.parsed.topology == topology
    backend.close()


def test_url_parts_reach_the_options() -> None:
    backend = backend_from_url("redis://user:s%40cret@h:7000/3?timeout=0.25&prefix=app")
    assert isinstance(backend, RedisBackend)
    assert backend.options.db == 3
    assert backend.options.timeout == 0.25
    assert backend.prefix == "app"
    assert (backend.parsed.username, backend.parsed.password) == ("user", "s@cret")
    assert "s%40cret" not in backend.url
    assert "***" in backend.url
    sentinel = backend_from_url("redis+sentinel://s1/mymaster/2")
    assert isinstance(sentinel, RedisBackend)
    assert (sentinel.options.service_name, sentinel.options.db) == ("mymaster", 2)


def test_keywords_override_the_query_string() -> None:
    backend = backend_from_url("redis://h?timeout=5", timeout=0.5)
    assert isinstance(backend, RedisBackend)
    assert backend.options.timeout == 0.5


def test_memory_url_gives_the_memory_backend() -> None:
    backend = backend_from_url("memory://?prefix=app")
    assert isinstance(backend, MemoryBackend)
    assert backend.prefix == "app"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mongodb://h", "unknown backend URL scheme 'mongodb'; known schemes: memory, redis"),
        ("localhost:6379", "has no scheme"),
        ("redis://", "names no host"),
        ("redis://h:port", "bad port"),
        ("redis://a,b", "use redis+cluster://"),
        ("redis+unix://", "needs a socket path"),
        ("redis+sentinel://s1", "needs a service name"),
        ("redis://h/0/extra", "unexpected path"),
        ("redis://h?timeout=-1", "timeout"),
        ("redis://h?timeout=abc", "timeout"),
        ("redis://h?bogus=1", "known options: prefix, timeout"),
        ("redis://h?prefix=a:b", "prefix"),
        ("memory://host", "takes no host"),
        ("memory://?timeout=1", "known options: prefix"),
    ],
)
def test_bad_urls_fail_clearly(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("+", r"\+").replace("?", r"\?")):
        backend_from_url(url)


def test_unknown_scheme_lists_every_known_scheme() -> None:
    with pytest.raises(ConfigurationError) as info:
        backend_from_url("memcached://h")
    for scheme in SCHEMES:
        assert scheme in str(info.value)


def test_clock_only_for_memory() -> None:
    with pytest.raises(ConfigurationError, match="memory:// only"):
        backend_from_url("redis://h", clock=lambda: 0.0)


def test_mask_password() -> None:
    assert mask_password("redis://u:p@h:1/0") == "redis://u:***@h:1/0"
    assert mask_password("redis://h:1/0") == "redis://h:1/0"


def test_resolve_backend_shares_one_backend_per_url() -> None:
    first = resolve_backend("memory://?prefix=shared")
    assert resolve_backend("memory://?prefix=shared") is first
    assert resolve_backend(None) is resolve_backend(None)
    assert resolve_backend(first) is first
    with pytest.raises(ConfigurationError, match="backend= takes"):
        resolve_backend(42)  # type: ignore[arg-type]
