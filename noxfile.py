"""Sessions: tests (unit + smoke on CPU), smoke, gpu_suite, tables, bench, lint."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "venv"

GPU_SUITES = ["suites/gpu-cifar10.yaml"]


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests and the CPU smoke suite against its golden values."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def smoke(session: nox.Session) -> None:
    """Only the smoke-marked tests (CPU, a few minutes)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "smoke", *session.posargs)


@nox.session(venv_backend="none", default=False)
def gpu_suite(session: nox.Session) -> None:
    """Run the GPU suites in the current interpreter (works offline), then their golden tests."""
    for suite in GPU_SUITES:
        session.run("python", "-m", "kdbench", "run", suite, "--device", "cuda", *session.posargs)
    session.run("python", "-m", "pytest", "-m", "gpu", "tests/test_golden.py")


@nox.session(venv_backend="none", default=False)
def tables(session: nox.Session) -> None:
    """Regenerate the Markdown result tables in reports/ from results/."""
    session.run("python", "-m", "kdbench", "report", "suites/smoke.yaml", "--device-class", "cpu")
    for suite in GPU_SUITES:
        session.run("python", "-m", "kdbench", "report", suite, "--device-class", "cuda-sm90")


@nox.session(venv_backend="none", default=False)
def bench(session: nox.Session) -> None:
    """Throughput benchmarks, then compared against the saved baseline measured on the same
    machine (benchmarks/*.json; threshold from benchmarks/thresholds.json): fails on a regression."""
    session.run("python", "-m", "pytest", "-m", "benchmark", "--benchmark-enable", "--benchmark-json=.benchmarks/latest.json", *session.posargs)
    session.run("python", "-m", "kdbench", "bench-compare", ".benchmarks/latest.json")


@nox.session(default=False)
def lint(session: nox.Session) -> None:
    """ruff over the package, tests and tools."""
    session.install("ruff")
    session.run("ruff", "check", "kdbench", "tests", "tools", "noxfile.py")
