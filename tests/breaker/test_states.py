"""Behaviour 1 (states, operators), 3 (open time), 9 (presets, config), 10 (registry)."""

from __future__ import annotations

import math

import pytest

from resilience import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ConfigurationError,
    breakers,
)
from tests.conftest import TestClock

from .conftest import Boom, Make, boom, fail, fresh_name, ok, state, succeed


def test_closed_open_half_open_closed(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(failure_threshold=3, recovery_timeout=10.0)
    assert state(br) is CircuitState.CLOSED
    fail(br, 2)
    assert state(br) is CircuitState.CLOSED
    fail(br)
    assert state(br) is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        br.call(ok)
    assert info.value.name == br.name
    assert 9.0 < info.value.retry_after <= 10.0
    sync_clock.advance(10.5)
    succeed(br)  # the probe
    assert state(br) is CircuitState.CLOSED


def test_half_open_failure_reopens(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(failure_threshold=1, recovery_timeout=5.0, half_open_max_calls=1)
    fail(br)
    sync_clock.advance(6)
    with br.guard():
        assert state(br) is CircuitState.HALF_OPEN
    assert state(br) is CircuitState.CLOSED
    fail(br)
    sync_clock.advance(6)
    fail(br)  # the probe fails
    assert state(br) is CircuitState.OPEN


def test_force_open_disable_reset(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(failure_threshold=2, recovery_timeout=1.0)
    br.force_open()
    assert state(br) is CircuitState.FORCED_OPEN
    sync_clock.advance(1000)
    with pytest.raises(CircuitOpenError) as info:
        br.call(ok)
    assert math.isinf(info.value.retry_after)
    br.reset()
    assert state(br) is CircuitState.CLOSED
    succeed(br)
    br.disable()
    assert state(br) is CircuitState.DISABLED
    fail(br, 10)  # never trips
    assert state(br) is CircuitState.DISABLED
    succeed(br)
    assert br.stats().failures == 10
    br.reset()
    assert state(br) is CircuitState.CLOSED
    stats = br.stats()
    assert (stats.calls, stats.failures, stats.rejected) == (0, 0, 0)
    fail(br, 2)
    assert state(br) is CircuitState.OPEN


def test_reset_closes_an_open_breaker(make_sync: Make) -> None:
    br = make_sync(failure_threshold=1)
    fail(br)
    assert state(br) is CircuitState.OPEN
    br.reset()
    succeed(br)
    assert state(br) is CircuitState.CLOSED


def test_exponential_open_time_with_cap(make_sync: Make, sync_clock: TestClock) -> None:
    br = make_sync(
        failure_threshold=1,
        recovery_timeout=10.0,
        recovery_multiplier=2.0,
        max_recovery_timeout=30.0,
    )

    def retry_after() -> float:
        with pytest.raises(CircuitOpenError) as info:
            br.call(ok)
        return info.value.retry_after

    fail(br)
    assert 9.5 < retry_after() <= 10.0
    sync_clock.advance(10.1)
    fail(br)  # probe fails: d -> 2d
    assert 19.5 < retry_after() <= 20.0
    sync_clock.advance(20.1)
    fail(br)  # 4d = 40, capped at 30
    assert 29.5 < retry_after() <= 30.0
    sync_clock.advance(30.1)
    fail(br)  # still capped
    assert 29.5 < retry_after() <= 30.0
    sync_clock.advance(30.1)
    succeed(br)  # closes: back to d
    assert state(br) is CircuitState.CLOSED
    fail(br)
    assert 9.5 < retry_after() <= 10.0


def test_presets() -> None:
    expected = {"database": (5, 30.0), "critical": (3, 10.0), "analytics": (8, 45.0)}
    expected["batch"] = (10, 60.0)
    for preset, (threshold, recovery) in expected.items():
        br = CircuitBreaker.preset(preset, name=fresh_name())
        assert br.config.failure_threshold == threshold
        assert br.config.recovery_timeout == recovery
        br.close()
    db = CircuitBreaker.preset("database")
    assert db.name == "database"
    tuned = CircuitBreaker.preset("critical", name=fresh_name(), recovery_timeout=20.0)
    assert (tuned.config.failure_threshold, tuned.config.recovery_timeout) == (3, 20.0)
    with pytest.raises(ConfigurationError, match="known: analytics, batch, critical, database"):
        CircuitBreaker.preset("nope")
    db.close()
    tuned.close()


@pytest.mark.parametrize(
    "options",
    [
        {"failure_threshold": 0},
        {"recovery_timeout": -1},
        {"half_open_max_calls": 0},
        {"failure_rate_threshold": 1.5},
        {"window": "sliding"},
        {"slow_call_duration": 1.0},  # needs a window
        {"recovery_timeout": 10, "max_recovery_timeout": 5},
        {"record_on": [42]},
        {"no_such_option": 1},
    ],
)
def test_invalid_config_fails_at_construction(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="invalid circuit breaker configuration"):
        CircuitBreaker(fresh_name(), **options)  # type: ignore[arg-type]


def test_configure_is_validated_and_applies(make_sync: Make) -> None:
    br = make_sync(failure_threshold=5)
    with pytest.raises(ConfigurationError):
        br.configure(failure_threshold=-1)
    assert br.config.failure_threshold == 5
    config = br.configure(failure_threshold=2)
    assert isinstance(config, BreakerConfig)
    assert br.config.failure_threshold == 2
    fail(br, 2)
    assert state(br) is CircuitState.OPEN
    with pytest.raises(ConfigurationError):
        br.configure(failure_policy="fail_open")


def test_config_object_and_single_exception_class() -> None:
    config = BreakerConfig(failure_threshold=2, record_on=Boom)  # type: ignore[arg-type]
    assert config.record_on == (Boom,)
    br = CircuitBreaker(fresh_name(), config=config)
    with pytest.raises(ValueError, match="x"):
        br.call(_raise_value_error)
    fail(br, 2)
    assert state(br) is CircuitState.OPEN
    br.close()


def _raise_value_error() -> None:
    raise ValueError("x")


def test_registry() -> None:
    name = fresh_name()
    first = CircuitBreaker(name)
    assert CircuitBreaker.get(name) is first
    assert breakers()[name] is first
    second = CircuitBreaker(name, failure_threshold=2)
    assert CircuitBreaker.get(name) is second  # the newest wins: no first-registration-wins
    second.close()
    with pytest.raises(KeyError):
        CircuitBreaker.get(name)
    first.close()
    del first, second
    assert name not in breakers()


def test_boom_helper_is_a_failure(make_sync: Make) -> None:
    br = make_sync(failure_threshold=1)
    with pytest.raises(Boom):
        br.call(boom)
    assert state(br) is CircuitState.OPEN
