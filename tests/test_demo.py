"""``python -m resilience`` (the README's first command) works as documented."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resilience", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def check_demo_output(out: str) -> None:
    assert "ok, ok, ok, ok, ok, 429" in out
    assert "stats: allowed=5 rejected=3" in out
    assert "critical-1 → critical-2 → high-1 → normal-1 → low-1 → batch-1" in out
    assert "event: closed → open" in out
    assert "the database saw 3 calls out of 6" in out
    assert "event: half_open → closed" in out
    assert "stats: state=closed" in out


def test_demo_on_the_memory_backend() -> None:
    result = run()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("resilience ")
    assert "backend: memory:// (in-process) ok" in result.stdout
    check_demo_output(result.stdout)


@pytest.mark.redis
def test_demo_on_redis(redis_url: str) -> None:
    result = run("--backend", redis_url)
    assert result.returncode == 0, result.stderr
    assert "(shared) ok" in result.stdout
    check_demo_output(result.stdout)


def test_check_only() -> None:
    result = run("--check")
    assert result.returncode == 0
    assert "Rate limiter" not in result.stdout


def test_bad_url_exits_2() -> None:
    result = run("--backend", "nosuch://x")
    assert result.returncode == 2
    assert "known schemes" in result.stderr


def test_unreachable_backend_exits_1() -> None:
    from tests.servers import free_port

    result = run("--backend", f"redis://127.0.0.1:{free_port()}/0?timeout=0.2")
    assert result.returncode == 1
    assert "unavailable" in result.stderr
