from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from kdbench.determinism import flush_denormals

# Before any test starts torch's CPU threads: they then flush denormals as the CLI's do. Python
# floats on this thread are flushed too, so hypothesis float strategies say allow_subnormal=False.
flush_denormals()

REPO = Path(__file__).resolve().parents[1]
# The committed smoke results (reports/results holds one results folder per device class).
SMOKE_RESULTS = REPO / "reports" / "results" / "cpu" / "smoke"


def shared_data_root() -> Path | None:
    """Real datasets for tests that read them: $KDBENCH_DATA, else ../shared/datasets."""
    env = os.environ.get("KDBENCH_DATA")
    if env and Path(env).is_dir():
        return Path(env)
    beside = REPO.parent / "shared" / "datasets"
    return beside if beside.is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("no real data root: set KDBENCH_DATA to a folder holding fashion-mnist/ and cifar10-jpeg/")
    return root


@pytest.fixture(scope="session")
def cuda() -> torch.device:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU; torch.cuda.is_available() is False here")
    return torch.device("cuda")


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """Decoded-data and teacher caches in a temporary folder."""
    monkeypatch.setenv("KDBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# --------------------------------------------------------------------------- golden discipline
# A plain test run must never write golden/: hash the folder when the session starts and
# fail the session if it changed by the end.


def _golden_digest() -> str:
    import hashlib

    h = hashlib.sha256()
    for p in sorted((REPO / "golden").rglob("*")):
        if p.is_file():
            h.update(p.relative_to(REPO).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def pytest_report_header(config):
    """A CPU queue (tools/cpu_cells.sh) training beside the tests: measured 2026-11-27 on 2 cores,
    its epochs ran 4-5x slower while tests ran (nice does not help: both sides' OpenMP threads
    wait on each other), and those epoch times go into its results. Said first, not enforced."""
    pid_file = Path(os.environ.get("RUN", "/work/cpu-run")) / "pid"
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return (f"warning: a CPU queue is training on this machine (pid {pid}, {pid_file}): these tests slow it 4-5x and its "
            "results record the slowed epochs; `bash tools/cpu_cells.sh stop` first (it resumes from its last checkpoint)")


def pytest_sessionstart(session):
    session.config._golden_digest = _golden_digest()


def pytest_sessionfinish(session, exitstatus):
    if _golden_digest() != session.config._golden_digest:
        session.config.get_terminal_writer().line("golden/ was modified during the test run: tests must never write golden files", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_benchmark_update_machine_info(config, machine_info):
    """GPU, driver, torch, CUDA and cuDNN beside pytest-benchmark's own CPU description."""
    from kdbench.determinism import environment

    env = environment(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    machine_info["kdbench"] = {k: env.get(k) for k in ("torch", "cuda", "cudnn", "gpu", "driver", "gpu_capability", "torch_threads", "git_revision")}


def smoke_subset(results_dir: Path, per_class: int):
    """The smoke suite cut to ``per_class`` images a class, and its data prepared as a run
    would (kdbench.prepare.Prepared): (suite, prepared), for tests that call fit() directly."""
    from kdbench.runner import Runner, RunOptions
    from kdbench.suite import load_suite

    suite = load_suite(REPO / "suites" / "smoke.yaml", (f"split.max_per_class={per_class}",))
    return suite, Runner(suite, RunOptions(results_dir=results_dir, log=lambda m: None)).prepare("fmnist-smoke")


def md_cells(line: str) -> list[str]:
    """The stripped cells of one Markdown table row ("| a | b |" -> ["a", "b"])."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def md_rows(text: str) -> list[list[str]]:
    """Every Markdown table row in ``text`` (the lines that start with "|", the header and its
    separator row included), as cells."""
    return [md_cells(line) for line in text.splitlines() if line.startswith("|")]


def committed_smoke_result(name: str, folder: Path, **config) -> dict:
    """A committed smoke result copied into ``folder`` as this training code would have written
    it (the committed file may predate the last change to train.py), with ``config`` parts
    replaced (e.g. code="0" * 64 for a result of older code) and its config_hash to match."""
    import json

    from kdbench.code_lineage import canonical
    from kdbench.fingerprint import code_fingerprint
    from kdbench.suite import spec_hash

    r = json.loads((SMOKE_RESULTS / name).read_text())
    r["config"].update({"code": canonical(code_fingerprint()), **config})
    r["config_hash"] = spec_hash(r["config"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(r))
    return r


def script_checkout(work: Path, *scripts: str) -> dict:
    """A checkout's layout under ``work`` for rehearsing tools/ scripts: those scripts and the
    suites. Returns an environment whose python3 is this test run's (kdbench importable)."""
    import shutil
    import sys

    (work / "tools").mkdir(parents=True)
    for script in scripts:
        shutil.copy(REPO / "tools" / script, work / "tools")
    shutil.copytree(REPO / "suites", work / "suites")
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
