"""The unix-socket and Sentinel URL forms against real private processes."""

from __future__ import annotations

import pytest

from resilience import BackendError, backend_from_url
from resilience._backends._scripts import COUNTER
from tests.servers import RedisSentinel, RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.anyio]


async def test_unix_socket(tmp_path_factory: pytest.TempPathFactory) -> None:
    socket = tmp_path_factory.mktemp("sock") / "redis.sock"
    server = RedisServer("--unixsocket", str(socket), "--unixsocketperm", "700").start()
    try:
        for scheme in ("redis+unix", "valkey+unix"):
            backend = backend_from_url(f"{scheme}://{socket}?db=1", prefix=scheme.replace("+", "-"))
            key = backend.key("test", "unix", "n")
            assert backend.run_sync(COUNTER, [key], [2, 60_000]) == 2
            assert await backend.run(COUNTER, [key], [3, 60_000]) == 5
            await backend.aclose()
    finally:
        server.stop()


async def test_sentinel_finds_the_master() -> None:
    master = RedisServer().start()
    sentinel = RedisSentinel(master).start()
    try:
        backend = backend_from_url(sentinel.url, timeout=1.0)
        key = backend.key("test", "sentinel", "n")
        assert backend.run_sync(COUNTER, [key], [2, 60_000]) == 2
        assert await backend.run(COUNTER, [key], [3, 60_000]) == 5
        await backend.aclose()
    finally:
        sentinel.stop()
        master.stop()


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate and key for 127.0.0.1, made with openssl."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return str(cert), str(key)


async def test_tls(tls_cert: tuple[str, str]) -> None:
    """``rediss://`` against a private TLS-only server with a self-signed certificate."""
    import redis as redis_py

    from tests.servers import free_port

    cert, key = tls_cert
    port = free_port()
    server = RedisServer(
        "--tls-port", str(port), "--tls-cert-file", cert, "--tls-key-file", key,
        "--tls-ca-cert-file", cert, "--tls-auth-clients", "no",
    )  # fmt: skip
    server.start()  # the plain port answers the readiness ping; TLS is on its own port
    try:
        url = f"rediss://127.0.0.1:{port}/0"
        backend = backend_from_url(url, client_options={"ssl_ca_certs": cert})
        key_name = backend.key("test", "tls", "n")
        assert backend.run_sync(COUNTER, [key_name], [2, 60_000]) == 2
        assert await backend.run(COUNTER, [key_name], [3, 60_000]) == 5
        await backend.aclose()
        # the plain protocol is refused on the TLS port: the URL's scheme is what made it work
        plain = backend_from_url(f"redis://127.0.0.1:{port}/0", timeout=0.5)
        with pytest.raises(BackendError) as info:
            plain.run_sync(COUNTER, [key_name], [1, 60_000])
        assert isinstance(info.value.__cause__, redis_py.RedisError | OSError)
        plain.close()
    finally:
        server.stop()
