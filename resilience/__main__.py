"""``python -m resilience``: print the version and check the configured backend.

``--backend URL`` points it at another backend (default ``memory://``, or the
``RESILIENCE_BACKEND`` environment variable). The exit status is 0 when the backend answered a
script round trip, 1 when it did not, 2 for a bad URL.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import __version__, backend_from_url
from ._backends._scripts import SERVER_TIME
from ._exceptions import BackendError, ConfigurationError


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m resilience", description=__doc__)
    parser.add_argument(
        "--backend",
        default=os.environ.get("RESILIENCE_BACKEND", "memory://"),
        help="backend URL (memory://, redis://host:6379/0, redis+cluster://..., ...)",
    )
    args = parser.parse_args(argv)
    print(f"resilience {__version__}")
    try:
        backend = backend_from_url(args.backend)
    except ConfigurationError as error:
        print(f"backend: invalid URL: {error}", file=sys.stderr)
        return 2
    try:
        start = time.perf_counter()
        server_time = backend.run_sync(SERVER_TIME, [], [])
        latency = time.perf_counter() - start
    except BackendError as error:
        print(f"backend: {backend.url} is unavailable: {error}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    kind = "in-process" if backend.is_local else "shared"
    print(f"backend: {backend.url} ({kind}) ok, script round trip {latency * 1e3:.2f} ms")
    print(f"backend clock: {server_time:.6f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
