"""Sessions: tests (unit + smoke on CPU), smoke, gpu_suite, tables, bench, lint."""

from __future__ import annotations

from pathlib import Path

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


ALL_SUITES = sorted(str(p) for p in Path("suites").glob("*.yaml"))


@nox.session(venv_backend="none", default=False)
def gpu_profile(session: nox.Session) -> None:
    """The quick profile of every suite on the GPU (all cells, all data, one epoch per model),
    into results-quick/; suites whose data set is missing say so and the others go on."""
    for suite in ALL_SUITES:
        session.run("python", "-m", "kdbench", "run", suite, "--quick", "--device", "cuda", "--results", "results-quick",
                    *session.posargs, success_codes=[0, 1, 2])


def committed_results() -> dict[tuple[str, str], list[int]]:
    """(suite file, device class) → the seeds of its results in reports/results/DEVICECLASS/SUITE/:
    one results folder per device class, so that the same cell run on the CPU and on a GPU
    keeps both results (kdbench diff compares the two)."""
    import json

    found: dict[tuple[str, str], set[int]] = {}
    for suite in ALL_SUITES:
        for f in Path("reports/results").glob(f"*/{Path(suite).stem}/*.json"):
            r = json.loads(f.read_text())
            device_class = f.parent.parent.name
            if r["environment"]["device_class"] != device_class:
                raise SystemExit(f"{f}: a {r['environment']['device_class']} result in the {device_class} folder")
            found.setdefault((suite, device_class), set()).add(r["cell"]["seed"])
    return {k: sorted(v) for k, v in sorted(found.items())}


@nox.session(venv_backend="none", default=False)
def tables(session: nox.Session) -> None:
    """Regenerate the report page of every suite and device class in reports/results/ (tables, figures; Grad-CAM for smoke),
    then reports/README.md, the overview of every suite."""
    found = committed_results()
    for (suite, device_class), seeds in found.items():
        # Every seed there (the golden files' spread seeds): the pages show the spread and
        # whether KD gains clear it ("Across seeds").
        extra = ["--gradcam"] if suite.endswith("smoke.yaml") else []
        # The same suite's results on the other device classes: the page compares shared cells.
        others = [f"reports/results/{c}" for (s, c) in found if s == suite and c != device_class]
        if others:
            extra += ["--compare", *others]
        session.run("python", "-m", "kdbench", "report", suite, "--set", f"seeds={seeds}", "--results", f"reports/results/{device_class}",
                    "--device-class", device_class, *extra)
    # The overview of every suite, linking the pages just written (reports/README.md).
    session.run("python", "-m", "kdbench", "index", silent=True)


@nox.session(venv_backend="none", default=False)
def bench(session: nox.Session) -> None:
    """Throughput benchmarks, then compared against the saved baseline measured on the same
    machine (benchmarks/*.json; threshold from benchmarks/thresholds.json): fails on a regression."""
    Path(".benchmarks").mkdir(exist_ok=True)
    session.run("python", "-m", "pytest", "-m", "benchmark", "--benchmark-enable", "--benchmark-json=.benchmarks/latest.json", *session.posargs)
    session.run("python", "-m", "kdbench", "bench-compare", ".benchmarks/latest.json")


@nox.session(default=False)
def lint(session: nox.Session) -> None:
    """ruff over the package, tests and tools."""
    session.install("ruff")
    session.run("ruff", "check", "kdbench", "tests", "tools", "noxfile.py")
