"""The Redis backend: standalone, TLS, unix socket, Sentinel and Cluster, sync and async.

Every decision is one ``EVALSHA`` of a script shipped as package data. The digest is computed
locally, so the first call costs no extra round trip; a ``NOSCRIPT`` reply (after ``SCRIPT
FLUSH``, a restart or a failover) is answered by one ``EVAL`` of the source, which also caches the
script again. Scripts read the time from ``TIME``: the client's clock is never used.

redis-py's asyncio client belongs to one event loop, so the backend keeps one async client per
running loop (one connection pool each), created on first use. On trio, where redis-py has no
client, async calls run the blocking client in a worker thread.

Every script is sent with a short prelude that defines ``now()``: the server's ``TIME`` in
seconds as a float. Scripts call ``now()`` and never ``TIME`` directly. A backend built with
``test_clock=True`` (tests only) sends a prelude that adds an offset passed as an extra last
argument, so tests can move the server's time forward with :meth:`RedisBackend.advance_clock`
instead of sleeping; the offset lives in this backend object, nothing in Redis changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
import anyio.to_thread

from .._exceptions import BackendError, BackendUnavailable, ConfigurationError
from .._listeners import deliver
from ._base import Arg, Backend, BackendStatus, MessageCallback, Script
from ._urls import ParsedURL, RedisOptions, mask_password

if TYPE_CHECKING:
    import redis as redis_sync
    import redis.asyncio as redis_async

__all__ = ["PRELUDE", "TEST_PRELUDE", "RedisBackend"]

#: Defines ``now()`` for every script: the server clock in seconds.
PRELUDE = """local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""

#: The test-clock prelude: the server clock plus an offset popped from the end of ARGV.
TEST_PRELUDE = """local __offset = tonumber(table.remove(ARGV))
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000 + __offset
end
"""

logger = logging.getLogger("resilience.backend")


def _import_redis() -> Any:
    try:
        import redis
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ConfigurationError(
            "the Redis backend needs redis-py: pip install 'resilience[redis]'"
        ) from None
    return redis


class RedisBackend(Backend):
    """State in Redis (or Valkey), shared by every process that uses the same server and prefix.

    Build it with :func:`resilience.backend_from_url`; the constructor takes an already parsed
    URL and validated options.
    """

    is_local = False

    def __init__(self, url: str, parsed: ParsedURL, options: RedisOptions) -> None:
        self._redis = _import_redis()
        self.url = mask_password(url)
        self.prefix = options.prefix
        self.options = options
        self.parsed = parsed
        self.status = BackendStatus(self.url, options.probe_interval)
        self._errors = self._redis.exceptions
        self._unavailable: tuple[type[BaseException], ...] = (
            self._errors.ConnectionError,
            self._errors.TimeoutError,
            self._errors.ClusterDownError,
            self._errors.ReadOnlyError,
            self._errors.TryAgainError,
            OSError,
            asyncio.TimeoutError,
        )
        self._sync: redis_sync.Redis | None = None
        self._sync_extras: list[Any] = []
        self._sync_lock = threading.Lock()
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._pubsub: _Listener | None = None
        self._closed = False
        self._test_clock = options.test_clock
        self._prelude = TEST_PRELUDE if options.test_clock else PRELUDE
        self._compiled: dict[Script, tuple[str, str]] = {}
        #: Seconds added to the server clock (``test_clock=True`` only).
        self.clock_offset = 0.0

    def advance_clock(self, seconds: float) -> None:
        """Move this backend's view of the server clock forward (``test_clock=True`` only)."""
        if not self._test_clock:
            raise ConfigurationError("advance_clock() needs a backend built with test_clock=True")
        if seconds < 0:
            raise ValueError("a clock never goes backwards")
        self.clock_offset += seconds

    def _compile(self, script: Script) -> tuple[str, str]:
        compiled = self._compiled.get(script)
        if compiled is None:
            source = self._prelude + script.source
            compiled = self._compiled[script] = (
                hashlib.sha1(source.encode("utf-8")).hexdigest(),
                source,
            )
        return compiled

    def _args(self, args: Sequence[Arg]) -> Sequence[Arg]:
        return [*args, repr(self.clock_offset)] if self._test_clock else args

    # -- clients -------------------------------------------------------------------------------

    def _client_kwargs(self) -> dict[str, Any]:
        opts = self.options
        retry_mod = self._redis.retry
        backoff = self._redis.backoff
        kwargs: dict[str, Any] = {
            "socket_timeout": opts.timeout,
            "socket_connect_timeout": opts.connect_timeout or opts.timeout,
            "retry": retry_mod.Retry(backoff.NoBackoff(), 0),
            "username": self.parsed.username,
            "password": self.parsed.password,
            "max_connections": opts.max_connections,
        }
        kwargs.update(opts.client_options)
        return kwargs

    def _make_client(self, module: Any) -> tuple[Any, list[Any]]:
        """Build a client of ``module`` (redis or redis.asyncio) and what to close with it."""
        parsed, kwargs = self.parsed, self._client_kwargs()
        if parsed.topology == "cluster":
            kwargs.pop("max_connections")
            nodes = [module.cluster.ClusterNode(h, p) for h, p in parsed.hosts]
            return module.RedisCluster(startup_nodes=nodes, ssl=parsed.tls, **kwargs), []
        if parsed.topology == "sentinel":
            sentinel_kwargs = {
                "socket_timeout": kwargs["socket_timeout"],
                "socket_connect_timeout": kwargs["socket_connect_timeout"],
                "password": self.options.sentinel_password,
            }
            sentinel = module.sentinel.Sentinel(
                parsed.hosts, sentinel_kwargs=sentinel_kwargs, ssl=parsed.tls, **kwargs
            )
            master = sentinel.master_for(self.options.service_name, db=self.options.db)
            return master, list(sentinel.sentinels)
        # A blocking pool: a burst of more callers than connections waits (up to the timeout)
        # for a free connection instead of failing, so load is never mistaken for an outage.
        connection = module.connection
        if parsed.topology == "unix":
            kwargs["path"] = parsed.path
            connection_class = connection.UnixDomainSocketConnection
        else:
            kwargs["host"], kwargs["port"] = parsed.hosts[0]
            connection_class = connection.SSLConnection if parsed.tls else connection.Connection
        pool = module.BlockingConnectionPool(
            max_connections=kwargs.pop("max_connections"),
            timeout=self.options.timeout,
            connection_class=connection_class,
            db=self.options.db,
            **kwargs,
        )
        return module.Redis.from_pool(pool), []

    @property
    def client(self) -> redis_sync.Redis:
        """The blocking redis-py client (one connection pool per backend)."""
        client = self._sync
        if client is None:
            with self._sync_lock:
                if self._closed:
                    raise BackendError("backend is closed", backend=self.url)
                if self._sync is None:
                    self._sync, self._sync_extras = self._make_client(self._redis)
                client = self._sync
        return client

    def async_client(self) -> redis_async.Redis:
        """The asyncio redis-py client of the running event loop (``RuntimeError`` off asyncio)."""
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is None:
            if self._closed:
                raise BackendError("backend is closed", backend=self.url)
            entry = self._async[loop] = _AsyncClient(*self._make_client(self._redis.asyncio))
        return entry.client  # type: ignore[no-any-return]

    async def _ready_client(self) -> Any:
        """The running loop's client, initialised once.

        redis-py's async Cluster client initialises lazily, and several tasks racing through
        that first initialisation close each other's connections; so the first caller
        initialises it under a lock while the others wait.
        """
        client = self.async_client()
        entry = self._async[asyncio.get_running_loop()]
        if not entry.ready:
            async with entry.lock:
                if not entry.ready:
                    if self.parsed.topology == "cluster":
                        await client.initialize()
                    entry.ready = True
        return client

    # -- scripts -------------------------------------------------------------------------------

    def _fail(self, error: BaseException) -> NoReturn:
        self.status.record_failure(error)
        if isinstance(error, self._unavailable):
            raise BackendUnavailable(f"{self.url}: {error}", backend=self.url) from error
        raise BackendError(f"{self.url}: {type(error).__name__}: {error}", backend=self.url) from (
            error
        )

    def run_sync(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run ``script`` with ``EVALSHA`` (``EVAL`` once after ``NOSCRIPT``)."""
        self.status.check()
        client = self.client
        sha, source = self._compile(script)
        args = self._args(args)
        try:
            try:
                reply = client.evalsha(sha, len(keys), *keys, *args)
            except self._errors.NoScriptError:
                reply = client.eval(source, len(keys), *keys, *args)
        except (self._errors.RedisError, OSError) as error:
            self._fail(error)
        if not self.status.available:
            self.status.record_success()
        return script.decode(reply)

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run ``script`` on the running loop's client (a worker thread on trio)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on asyncio: trio has no redis-py client
            return await anyio.to_thread.run_sync(self.run_sync, script, keys, args)
        self.status.check()
        entry = self._async.get(loop)
        sha, source = self._compile(script)
        args = self._args(args)
        try:
            client = (
                entry.client if entry is not None and entry.ready else await self._ready_client()
            )
            try:
                reply = await client.evalsha(sha, len(keys), *keys, *args)
            except self._errors.NoScriptError:
                reply = await client.eval(source, len(keys), *keys, *args)
        except (self._errors.RedisError, OSError, asyncio.TimeoutError) as error:
            self._fail(error)
        if not self.status.available:
            self.status.record_success()
        return script.decode(reply)

    # -- ping, pub/sub, close ------------------------------------------------------------------

    def ping_sync(self) -> float:
        """Send ``PING``; return the latency in seconds."""
        self.status.check()
        start = time.perf_counter()
        try:
            self.client.ping()
        except (self._errors.RedisError, OSError) as error:
            self._fail(error)
        self.status.record_success()
        return time.perf_counter() - start

    async def ping(self) -> float:
        """Send ``PING``; return the latency in seconds."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return await anyio.to_thread.run_sync(self.ping_sync)
        self.status.check()
        start = time.perf_counter()
        try:
            client = await self._ready_client()
            await client.ping()
        except (self._errors.RedisError, OSError, asyncio.TimeoutError) as error:
            self._fail(error)
        self.status.record_success()
        return time.perf_counter() - start

    def subscribe(self, channel: str, callback: MessageCallback) -> _ListenerSubscription:
        """Deliver messages on ``channel`` to ``callback`` from the listener thread."""
        with self._sync_lock:
            if self._pubsub is None:
                self._pubsub = _Listener(self)
            listener = self._pubsub
        return listener.add(channel, callback)

    def close(self) -> None:
        """Stop the listener thread and close every client this backend opened.

        An async client whose loop is idle is closed on that loop; one whose loop is running
        elsewhere is closed there (bounded by the timeout); one on the running loop is closed by
        a task on it. Prefer ``await backend.aclose()`` from async code.
        """
        with self._sync_lock:
            self._closed = True
            listener, self._pubsub = self._pubsub, None
            client, self._sync = self._sync, None
            extras, self._sync_extras = self._sync_extras, []
            clients = list(self._async.items())
            self._async.clear()
        if listener is not None:
            listener.stop()
        for each in [client, *extras]:
            if each is not None:
                each.close()
        for loop, entry in clients:
            self._close_async(loop, entry)

    def _close_async(self, loop: asyncio.AbstractEventLoop, entry: _AsyncClient) -> None:
        if loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(entry.aclose())
        elif loop.is_running():
            future = asyncio.run_coroutine_threadsafe(entry.aclose(), loop)
            future.result(self.options.timeout * 2)
        else:
            loop.run_until_complete(entry.aclose())

    async def aclose(self) -> None:
        """Close the running loop's async client, then everything :meth:`close` closes."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        entry = self._async.pop(loop, None) if loop is not None else None
        if entry is not None:
            await entry.aclose()
        await anyio.to_thread.run_sync(self.close)


class _AsyncClient:
    """One event loop's async client, and whether its first initialisation is done."""

    __slots__ = ("client", "extras", "lock", "ready")

    def __init__(self, client: Any, extras: list[Any]) -> None:
        self.client = client
        self.extras = extras
        self.lock = asyncio.Lock()
        self.ready = False

    async def aclose(self) -> None:
        for each in [self.client, *self.extras]:
            await each.aclose()


class _ListenerSubscription:
    __slots__ = ("_callback", "_channel", "_listener")

    def __init__(self, listener: _Listener, channel: str, callback: MessageCallback) -> None:
        self._listener = listener
        self._channel = channel
        self._callback = callback

    def close(self) -> None:
        self._listener.remove(self._channel, self._callback)


class _Listener:
    """One daemon thread per backend that owns a pub/sub connection.

    It subscribes to whatever channels have callbacks, delivers messages, and after a connection
    loss reconnects every ``probe_interval``, re-subscribes, and calls each callback with
    ``None`` so subscribers re-read state they may have missed.
    """

    _POLL = 0.05

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._callbacks: dict[str, list[MessageCallback]] = {}
        self._stop = threading.Event()
        self._confirmed: dict[str, threading.Event] = {}
        self._thread = threading.Thread(
            target=self._run, name=f"resilience-pubsub {backend.url}", daemon=True
        )
        self._thread.start()

    def add(self, channel: str, callback: MessageCallback) -> _ListenerSubscription:
        with self._lock:
            self._callbacks.setdefault(channel, []).append(callback)
            confirmed = self._confirmed.setdefault(channel, threading.Event())
        # Wait (bounded) for the server to confirm, so no message published after this
        # returns is missed; if the server is down the subscription is made on reconnect.
        confirmed.wait(self._backend.options.timeout)
        return _ListenerSubscription(self, channel, callback)

    def remove(self, channel: str, callback: MessageCallback) -> None:
        with self._lock:
            callbacks = self._callbacks.get(channel, [])
            if callback in callbacks:
                callbacks.remove(callback)
            if not callbacks:
                self._callbacks.pop(channel, None)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _deliver(self, channel: str, message: bytes | None) -> None:
        with self._lock:
            callbacks = list(self._callbacks.get(channel, ()))
        deliver(callbacks, message, logger, f"subscriber of {channel}")

    def _run(self) -> None:
        errors = self._backend._errors
        pubsub: Any = None
        subscribed: set[str] = set()
        lost = False
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self._backend.client.pubsub()  # type: ignore[no-untyped-call]
                    subscribed = set()
                with self._lock:
                    wanted = set(self._callbacks)
                if wanted - subscribed:
                    pubsub.subscribe(*(wanted - subscribed))
                if subscribed - wanted:
                    pubsub.unsubscribe(*(subscribed - wanted))
                subscribed = wanted
                if not subscribed:
                    self._stop.wait(self._POLL)
                    continue
                message = pubsub.get_message(timeout=self._POLL)
                if message is None:
                    continue
                channel = message["channel"]
                channel = channel.decode() if isinstance(channel, bytes) else channel
                if message["type"] == "subscribe":
                    with self._lock:
                        event = self._confirmed.get(channel)
                    if event is not None:
                        event.set()
                    if lost:
                        self._deliver(channel, None)
                elif message["type"] == "message":
                    data = message["data"]
                    self._deliver(channel, data if isinstance(data, bytes) else str(data).encode())
            except (errors.RedisError, OSError, ValueError, AttributeError) as error:
                if self._stop.is_set():
                    break
                logger.warning("pub/sub on %s lost: %s", self._backend.url, error)
                lost = True
                with self._lock:
                    for event in self._confirmed.values():
                        event.clear()
                if pubsub is not None:
                    with contextlib.suppress(errors.RedisError, OSError):
                        pubsub.close()
                pubsub = None
                self._stop.wait(max(self._backend.options.probe_interval, self._POLL))
        if pubsub is not None:
            with contextlib.suppress(errors.RedisError, OSError):
                pubsub.close()
