"""Limiter keys: the key cache never lets equal keys of other types share a bucket."""

from __future__ import annotations

import pytest

from resilience import MemoryBackend, RateLimiter


def test_equal_keys_of_other_types_do_not_share_a_cached_bucket() -> None:
    limiter = RateLimiter("1/minute", name="typed-keys", backend=MemoryBackend())
    assert limiter.hit_sync(1).allowed
    assert not limiter.hit_sync(1).allowed
    assert limiter.hit_sync("1").allowed is False  # an int key is its decimal string, on purpose
    with pytest.raises(TypeError):
        limiter.hit_sync(True)  # equal to 1, but not a valid key
    with pytest.raises(TypeError):
        limiter.hit_sync(1.0)  # type: ignore[arg-type]
