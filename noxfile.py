"""Sessions: the test matrix (Pythons x backends), lint, typecheck, demo, live and the benchmarks.

The matrix runs on every CPython 3.10-3.13 it finds (missing ones are skipped, except in CI);
the other sessions use the Python that runs nox, so a machine with one Python runs them all.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "tests-postgres", "lint", "typecheck"]
nox.options.error_on_missing_interpreters = False

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = re.findall(
    r"Programming Language :: Python :: (3\.\d+)", "\n".join(PYPROJECT["project"]["classifiers"])
)
BACKENDS = ["assistants", "responses"]


@nox.session(python=PYTHONS)
@nox.parametrize("backend", BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """Run the whole suite with the consumer tests on one backend."""
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run(
        "pytest",
        *session.posargs,
        env={"COMPAT_BACKEND": backend, "COMPAT_STORE": "memory"},
    )


@nox.session(name="tests-serve", python=PYTHONS)
def tests_serve(session: nox.Session) -> None:
    """The proxy alone: raw dashscope through `compat serve`, keys, replicas, shutdown, curl.

    ``COMPAT_SERVE_TEST_STORE`` (e.g. a PostgreSQL URI) runs the replica tests on that store.
    """
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", "tests/serve", *session.posargs, env={"COMPAT_STORE": "memory"})


@nox.session(name="tests-postgres")
def tests_postgres(session: nox.Session) -> None:
    """The store suite and the consumer suite (responses backend) on a PostgreSQL store.

    Needs a server: COMPAT_TEST_PG_URI (`eval "$(.ci/pg-start)"` starts a throwaway one).
    Without it the session is skipped, except in CI, where it fails.
    """
    uri = os.environ.get("COMPAT_TEST_PG_URI")
    if not uri:
        message = 'no COMPAT_TEST_PG_URI: run eval "$(.ci/pg-start)" first'
        if os.environ.get("CI") == "true":
            session.error(message)
        session.skip(message)
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run(
        "pytest",
        "tests/store",
        "tests/consumer",
        *session.posargs,
        env={
            "COMPAT_BACKEND": "responses",
            "COMPAT_STORE": uri,
            "COMPAT_TEST_STORE": uri,
            "COMPAT_TEST_PG_URI": uri,
        },
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and common mistakes with ruff."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the package strictly with mypy."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "typecheck"))
    session.run("mypy")


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """Run examples/code_tutor_stream.py against the bundled emulator."""
    session.install("-e", ".[all]")
    backend = os.environ.get("COMPAT_BACKEND", "responses")
    session.run(
        "python",
        "-m",
        "compat.testing",
        "--",
        "python",
        "examples/code_tutor_stream.py",
        *session.posargs,
        env={"COMPAT_BACKEND": backend, "COMPAT_STORE": "memory"},
    )


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Time compat's translated stream against openai, dashscope and a bare reader, per framing."""
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("python", "benchmarks/stream_throughput.py", *session.posargs)


@nox.session(name="bench-cold", default=False)
def bench_cold(session: nox.Session) -> None:
    """Time fresh processes to their first streamed delta: compat against a bare reader."""
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("python", "benchmarks/cold_start.py", *session.posargs)


@nox.session(name="bench-memory", default=False)
def bench_memory(session: nox.Session) -> None:
    """Peak RSS of fresh processes streaming 1k and 100k deltas: compat against a bare reader."""
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("python", "benchmarks/memory_flat.py", *session.posargs)


@nox.session(name="bench-store", default=False)
def bench_store(session: nox.Session) -> None:
    """Legacy cycles per second and Runs.create latency on memory, SQLite and PostgreSQL."""
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("python", "benchmarks/store_cycles.py", *session.posargs)


@nox.session(name="bench-concurrency", default=False)
def bench_concurrency(session: nox.Session) -> None:
    """32 streamed runs at once on threads (memory vs SQLite) and 8 processes on one SQLite file."""
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("python", "benchmarks/concurrency.py", *session.posargs)


@nox.session(name="bench-clients", default=False)
def bench_clients(session: nox.Session) -> None:
    """Measure what candidate HTTP clients cost per event on a one-event-per-chunk stream."""
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("python", "benchmarks/http_clients.py", *session.posargs)


@nox.session(name="bench-loop", default=False)
def bench_loop(session: nox.Session) -> None:
    """The event loop's longest stall with 32 compat.aio streams, store calls on and off it."""
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("python", "benchmarks/aio_loop_stall.py", *session.posargs)


@nox.session(default=False)
def live(session: nox.Session) -> None:
    """The examples on both backends against the real DashScope (skips without a key).

    Needs DASHSCOPE_API_KEY; records each Responses stream in tests/fixtures/live/ for replay.
    """
    if not os.environ.get("DASHSCOPE_API_KEY"):
        session.log(
            "live: skipped: DASHSCOPE_API_KEY is not set (the live session needs a real key)"
        )
        return
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("python", "tests/live/run_live.py", *session.posargs)
    session.run("pytest", "-m", "live", "tests/live", env={"COMPAT_LIVE": "1"})


@nox.session(name="bench-proxy", default=False)
def bench_proxy(session: nox.Session) -> None:
    """Per-event cost of `compat serve` over the in-process facade, and streams held per process."""
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("python", "benchmarks/proxy.py", *session.posargs)


@nox.session(name="bench-long", default=False)
def bench_long(session: nox.Session) -> None:
    """One run's cost at turn 1, 10, 50 and 100 of a thread, in chain and replay history modes."""
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("python", "benchmarks/long_threads.py", *session.posargs)
