"""``python -m resilience``: check the configured backend, then run the demo on it.

``--backend URL`` points it at another backend (default ``memory://``, or the
``RESILIENCE_BACKEND`` environment variable); ``--check`` only checks the backend. The exit
status is 0 when all went well, 1 when the backend did not answer, 2 for a bad URL.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import anyio

from . import __version__, backend_from_url
from ._backends._scripts import SERVER_TIME
from ._demo import run_demo
from ._exceptions import BackendError, ConfigurationError


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m resilience", description=__doc__)
    parser.add_argument(
        "--backend",
        default=os.environ.get("RESILIENCE_BACKEND", "memory://"),
        help="backend URL (memory://, redis://host:6379/0, redis+cluster://..., ...)",
    )
    parser.add_argument("--check", action="store_true", help="check the backend, skip the demo")
    args = parser.parse_args(argv)
    print(f"resilience {__version__}")
    try:
        backend = backend_from_url(args.backend)
    except ConfigurationError as error:
        print(f"backend: {error}", file=sys.stderr)
        return 2
    try:
        start = time.perf_counter()
        server_time = backend.run_sync(SERVER_TIME, [], [])
        latency = time.perf_counter() - start
    except BackendError as error:
        print(f"backend: {backend.url} is unavailable: {error}", file=sys.stderr)
        backend.close()
        return 1
    kind = "in-process" if backend.is_local else "shared"
    print(f"backend: {backend.url} ({kind}) ok, script round trip {latency * 1e3:.2f} ms")
    print(f"backend clock: {server_time:.6f} s")
    if args.check:
        backend.close()
        return 0
    print()

    async def demo() -> None:
        try:
            await run_demo(backend)
        finally:
            await backend.aclose()

    anyio.run(demo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
