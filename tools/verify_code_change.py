"""Show that a change to the training code trains bitwise as the old code did, and record it.

kdbench keys results, cached teachers and checkpoints by the fingerprint of the training code
(kdbench.fingerprint.CODE_FILES), so any change there, a refactor or an option every suite
leaves off, makes every finished result stale: on a 2-core CPU, days of runs. This runs the
same probe cells with the old code (a git revision, unpacked aside, or a folder holding a
``kdbench`` package) and with this tree's, on this machine, each in its own results and cache
folders, and compares every result: the sha256 of the teacher's, each assistant's and the
student's weights, every metric and report entry, every history row (times aside). If all
match, ``--record`` adds links from the new fingerprints to the old ones to
kdbench/code_lineage.json (commit it with the change): results and caches of the old code
then stay current (kdbench.code_lineage).

The probes: the smoke suite's whole recipe at seed 0, then every other suite in suites/ whose
data is here at ``--tiny`` (8 images a class, one epoch: each recipe's paths — augmentation,
schedulers, cached and per-step teachers, DKD, TAKD chains, streamed data — in seconds), fp32
unless ``--precision`` says otherwise (bf16 on a CPU without AVX-512 is 20-50x slower). Only
what the probes run is checked: a branch no suite takes on this device (a CUDA-only speed
option, fp8 training) is not, and fp8 cells' fingerprint is linked only with --precision fp8
on a GPU. The verdict and every compared cell go in the link, with the machine and command.

    python tools/verify_code_change.py HEAD             # this tree against the last commit
    python tools/verify_code_change.py HEAD --record    # and link the fingerprints if they match
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kdbench.code_lineage import LINEAGE_FILE, add_links, training_differences  # noqa: E402
from kdbench.data.base import resolve_data_root  # noqa: E402
from kdbench.determinism import cpu_model  # noqa: E402

DATA_ROOT = Path()  # set from the command line in main()

FINGERPRINTS = """
import json
from kdbench import fingerprint as f
fp8 = getattr(f, "FP8_CODE_FILES", None)
out = {"code": f.code_fingerprint()}
if hasattr(f, "raw_code_fingerprint"):
    out["code_raw"] = f.raw_code_fingerprint()
if fp8:
    out["code_fp8"] = f.code_fingerprint(fp8)
print(json.dumps(out))
"""

# (suite, cell glob, extra arguments). The smoke suite whole (six epochs, cosine schedule,
# teacher logits cached) and everything else at --tiny.
FULL_PROBES = [("smoke", "*__s0", [])]


def probes(suites: Path, only: list[str] | None, quick: bool) -> list[tuple[str, str, list[str]]]:
    out = [p for p in FULL_PROBES if (not only or p[0] in only) and not quick]
    for path in sorted(suites.glob("*.yaml")):
        if not only or path.stem in only:
            out.append((path.stem, "*", ["--tiny"]))
    return out


def python_env(tree: Path) -> dict:
    """An environment whose ``import kdbench`` finds ``tree``'s package first."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))


def fingerprints(tree: Path, cwd: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", FINGERPRINTS], env=python_env(tree), cwd=cwd, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"cannot fingerprint the code in {tree}:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout)


def unpack(rev: str, into: Path) -> Path:
    """The ``kdbench`` package of git revision ``rev``, unpacked under ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "kdbench"], capture_output=True)
    if archive.returncode:
        sys.exit(f"git archive {rev}: {archive.stderr.decode().strip()}")
    with tempfile.TemporaryFile() as f:
        f.write(archive.stdout)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(into, filter="data")
    return into


def run_probe(tree: Path, work: Path, suite: Path, cells: str, extra: list[str], precision: str, device: str) -> tuple[int, str]:
    """kdbench run with ``tree``'s code, from ``work`` (not a folder that holds another kdbench)."""
    args = [sys.executable, "-m", "kdbench", "run", str(suite), "--cells", cells, *extra, "--device", device, "--data-root", str(DATA_ROOT),
            "--set", f"matrix.precisions=[{precision}]", "--results", str(work / "results"), "--cache", str(work / "cache")]
    work.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(args, env=python_env(tree), cwd=work, capture_output=True, text=True)
    (work / f"{suite.stem}.log").write_text(out.stdout + out.stderr)
    return out.returncode, out.stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", help="the old code: a git revision of this repository, or a folder holding a kdbench package")
    ap.add_argument("--new", type=Path, default=REPO, help="the new code: a folder holding a kdbench package (default: this tree)")
    ap.add_argument("--suite", action="append", help="probe only this suite (repeat; default: all of suites/)")
    ap.add_argument("--quick", action="store_true", help="the --tiny probes only (not the smoke suite's whole recipe)")
    ap.add_argument("--precision", default="fp32", help="the precision every probe cell runs in (default fp32)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--work", type=Path, help="where the runs go (default: a new temporary folder, kept)")
    ap.add_argument("--record", action="store_true", help="add the links to the new tree's kdbench/code_lineage.json if every probe matched")
    ap.add_argument("--data-root", help="where the data sets are (default: $KDBENCH_DATA, else kdbench's default)")
    args = ap.parse_args()
    global DATA_ROOT
    DATA_ROOT = resolve_data_root(args.data_root)[0].resolve()
    work = (args.work or Path(tempfile.mkdtemp(prefix="kdbench-verify-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if Path(args.old, "kdbench").is_dir():
        old_tree, old_revision = Path(args.old).resolve(), str(Path(args.old).resolve())
    else:
        old_tree = unpack(args.old, work / "old-code")
        old_revision = subprocess.run(["git", "-C", str(REPO), "rev-parse", args.old], capture_output=True, text=True).stdout.strip()
    new_tree = args.new.resolve()
    old_fp, new_fp = fingerprints(old_tree, work), fingerprints(new_tree, work)
    print(f"old code {old_fp['code'][:12]}… ({args.old}), new code {new_fp['code'][:12]}… ({new_tree}); runs under {work}")
    if old_fp["code"] == new_fp["code"]:
        print("the training code's fingerprint did not change: nothing to verify")
        return 0
    compared, failed, not_probed = [], [], []
    for suite_name, cells, extra in probes(new_tree / "suites", args.suite, args.quick):
        suite = new_tree / "suites" / f"{suite_name}.yaml"
        tag = f"{suite_name}{'-tiny' if extra else ''}"
        t0 = time.perf_counter()
        rc, err = run_probe(new_tree, work / "new" / tag, suite, cells, extra, args.precision, args.device)
        if rc == 2 and "not found. Looked in" in err:
            print(f"  {tag}: its data is not in {DATA_ROOT}, not probed")
            not_probed.append(tag)
            continue
        if not rc:
            rc, err = run_probe(old_tree, work / "old" / tag, suite, cells, extra, args.precision, args.device)
            which = "old"
        else:
            which = "new"
        if rc:
            failed.append(f"{tag}: the {which} code's run failed (exit {rc}): {err.strip().splitlines()[-1] if err.strip() else ''}")
            print(f"  {failed[-1]}")
            continue
        new_files = sorted((work / "new" / tag / "results" / suite_name).glob("*.json"))
        for f in new_files:
            old_file = work / "old" / tag / "results" / suite_name / f.name
            diffs = training_differences(json.loads(old_file.read_text()), json.loads(f.read_text())) if old_file.exists() else ["no result from the old code"]
            entry = {"suite": suite_name, "cell": f.stem, "tiny": bool(extra), "same": not diffs}
            if diffs:
                failed.append(f"{tag} {f.stem}: {'; '.join(diffs[:5])}")
            else:
                entry["student_weights_sha256"] = json.loads(f.read_text())["student"]["weights_sha256"]
            compared.append(entry)
        print(f"  {tag}: {len(new_files)} cells, {sum(not e['same'] for e in compared if e['suite'] == suite_name)} differ "
              f"({time.perf_counter() - t0:.0f} s)")
    if failed or not compared:
        print("NOT the same:" if failed else "nothing was compared", *failed, sep="\n  ")
        return 1
    print(f"the same: {len(compared)} cells, bitwise" + (f"; not probed (no data here): {', '.join(not_probed)}" if not_probed else ""))
    if args.record:
        evidence = {
            "verified": {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                         "command": f"python tools/verify_code_change.py {args.old} " + " ".join(sys.argv[2:]),
                         "machine": f"{cpu_model() or platform.machine()}, {os.cpu_count()} cores", "device": args.device,
                         "precision": args.precision, "compared": "teacher, assistant and student weights sha256, metrics, report, "
                         "histories (times aside)", "data_root": str(DATA_ROOT), "not_probed": not_probed, "cells": compared},
            "old_revision": old_revision,
        }
        kinds = ["code", "code_raw"] + (["code_fp8"] if args.precision == "fp8" else [])
        links = [{"code": new_fp[k], "same_as": old_fp[k], "kind": k} for k in kinds if k in old_fp and k in new_fp]
        added = add_links(links, evidence, new_tree / "kdbench" / LINEAGE_FILE.name)
        print(f"recorded {added} links in {new_tree / 'kdbench' / LINEAGE_FILE.name}: commit it with the change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
