"""The one task runner: ``nox -s tests lint typing bench demo``."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typing"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")


def group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite: memory, Redis, a private Redis Cluster, asyncio and trio."""
    session.install("-e", ".[redis,prometheus]", *group("test"))
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install(*group("lint"))
    paths = ["resilience", "tests", "benchmarks", "examples", "noxfile.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and the benchmarks."""
    session.install("-e", ".[redis,prometheus,bench]", "nox", *group("typing"), *group("test"))
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers, in one run: ``nox -s bench -- [suite ...]``."""
    session.install("-e", ".[redis,bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job on the in-memory backend."""
    session.install("-e", ".")
    session.run("python", "-m", "resilience", *session.posargs)
