"""What a primitive does when its backend fails: a policy, not an accident.

- ``fail_open``: let the call through (a limiter admits, a breaker stays closed);
- ``fail_closed``: refuse it (a limiter rejects, a breaker rejects, a queue refuses);
- ``local``: keep deciding with in-process state, by running the same script on a private
  :class:`~resilience.MemoryBackend` until the shared backend is back.

Every failure is counted, logged once per outage (by the backend's ``BackendStatus``) and
visible in health; nothing is swallowed. :class:`PolicyRunner` is the one place that applies
the rule, so each primitive only states what "open" and "closed" mean for it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from ._backends._base import Arg, Backend, Script
from ._backends._memory import MemoryBackend
from ._clock import Clock, monotonic
from ._exceptions import BackendError

__all__ = ["FailurePolicy", "PolicyRunner"]


class FailurePolicy(str, enum.Enum):
    """What to do when the backend cannot answer."""

    FAIL_OPEN = "fail_open"
    FAIL_CLOSED = "fail_closed"
    LOCAL = "local"


class PolicyRunner:
    """Runs scripts on a primitive's backend and applies its failure policy.

    ``run`` and ``run_sync`` return the script's reply. When the backend fails they either
    re-raise the :class:`~resilience.BackendError` (``fail_open`` and ``fail_closed``: the
    primitive turns it into its own open or closed decision) or, for ``local``, run the script on
    an in-process memory backend with the same keys and return that reply. ``degraded`` tells
    whether the last decision came from the fallback; ``fallbacks`` counts such decisions.
    """

    __slots__ = ("_local", "backend", "degraded", "fallbacks", "local_clock", "policy")

    def __init__(
        self, backend: Backend, policy: FailurePolicy, *, local_clock: Clock = monotonic
    ) -> None:
        self.backend = backend
        self.policy = FailurePolicy(policy)
        self.local_clock = local_clock
        self.degraded = False
        self.fallbacks = 0
        self._local: MemoryBackend | None = None

    @property
    def local(self) -> MemoryBackend:
        """The in-process fallback backend (created on first use)."""
        if self._local is None:
            self._local = MemoryBackend(clock=self.local_clock, prefix=self.backend.prefix)
        return self._local

    def run_sync(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run ``script``, applying the policy on backend failure (blocking form)."""
        try:
            reply = self.backend.run_sync(script, keys, args)
        except BackendError as error:
            return self._fallback(error, script, keys, args)
        self.degraded = False
        return reply

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run ``script``, applying the policy on backend failure."""
        try:
            reply = await self.backend.run(script, keys, args)
        except BackendError as error:
            return self._fallback(error, script, keys, args)
        self.degraded = False
        return reply

    def _fallback(
        self, error: BackendError, script: Script, keys: Sequence[str], args: Sequence[Arg]
    ) -> Any:
        self.degraded = True
        self.fallbacks += 1
        if self.policy is not FailurePolicy.LOCAL:
            raise error
        return self.local.run_sync(script, keys, args)
