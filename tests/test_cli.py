"""The command line as a user meets it: errors without tracebacks, resume, lock, faults."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kdbench.io import SuiteLock

from .conftest import REPO, committed_smoke_result

QUICK = ["--set", "teacher.epochs=1", "--set", "student.epochs=1", "--device", "cpu"]


def kdbench(*args: str, tmp: Path, check: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, KDBENCH_CACHE=str(tmp / "cache"))
    proc = subprocess.run([sys.executable, "-m", "kdbench", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_bad_suite_is_a_clear_error_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "suites" / "smoke.yaml").read_text().replace("students: [cnn_tiny, cnn_small]", "students: [cnn_tiny, cnn_smal]"))
    proc = kdbench("run", str(bad), "--results", str(tmp_path / "r"), tmp=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"kdbench: error: {bad}: matrix.students[1]: unknown model 'cnn_smal' (did you mean 'cnn_small'")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists(), "nothing may be written before the suite is valid"


def test_list_prints_stable_ids(tmp_path):
    proc = kdbench("list", "suites/smoke.yaml", tmp=tmp_path, check=True)
    assert "fmnist-smoke__cnn_medium__cnn_small__fp32__kd__s0" in proc.stdout.splitlines()


def test_list_selects_cells_with_a_glob_as_run_does(tmp_path):
    proc = kdbench("list", "suites/smoke.yaml", "--cells", "*cnn_tiny*__kd__*", "--set", "seeds=[0,1]", tmp=tmp_path, check=True)
    lines = proc.stdout.splitlines()
    assert lines[0] == "smoke: 2 cells of 8, those matching *cnn_tiny*__kd__* (suites/smoke.yaml)"
    assert lines[1:] == ["fmnist-smoke__cnn_medium__cnn_tiny__fp32__kd__s0", "fmnist-smoke__cnn_medium__cnn_tiny__fp32__kd__s1"]
    none = kdbench("list", "suites/smoke.yaml", "--cells", "*resnet*", tmp=tmp_path)
    assert none.returncode == 2 and "no cell of smoke matches --cells '*resnet*'" in none.stderr


def test_precision_the_device_cannot_run(tmp_path):
    proc = kdbench("run", "suites/smoke.yaml", "--results", str(tmp_path / "r"), "--set", "matrix.precisions=[fp16]", "--device", "cpu", tmp=tmp_path)
    assert proc.returncode == 2 and "precision 'fp16' cannot run on cpu" in proc.stderr


@pytest.mark.smoke
def test_run_resumes_and_reports(tmp_path):
    args = ["run", "suites/smoke.yaml", "--results", str(tmp_path / "r"), "--cells", "*cnn_tiny*", *QUICK]
    first = kdbench(*args, tmp=tmp_path, check=True)
    assert "0 already done, 2 to run" in first.stdout
    assert "| fmnist-smoke | cnn_medium | cnn_tiny  | kd" in first.stdout
    files = sorted((tmp_path / "r" / "smoke").glob("*.json"))
    assert len(files) == 2
    before = {f.name: f.read_bytes() for f in files}
    second = kdbench(*args, tmp=tmp_path, check=True)
    assert "2 already done, 0 to run" in second.stdout
    assert {f.name: f.read_bytes() for f in files} == before
    res = json.loads(files[0].read_text())
    for key in ("dataset", "split", "code", "code_raw"):
        assert len(res["fingerprints"][key]) == 64
    assert res["environment"]["torch"] and res["statistic"].startswith("weights of the last epoch")
    # A changed recipe is a different configuration: the cell is redone, not reused.
    third = kdbench(*args[:-1], "cpu", "--set", "kd.temperature=2.0", tmp=tmp_path, check=True)
    assert "1 already done, 1 to run" in third.stdout


@pytest.mark.smoke
def test_nan_loss_fails_the_cell_and_the_suite_goes_on(tmp_path):
    proc = kdbench("run", "suites/smoke.yaml", "--results", str(tmp_path / "r"), "--cells", "*cnn_tiny*", *QUICK,
                   "--set", "student.optimizer.lr=1.0e+8", tmp=tmp_path)
    assert proc.returncode == 1
    files = sorted((tmp_path / "r" / "smoke").glob("*.json"))
    assert len(files) == 2  # both cells ran; each recorded its own failure
    for f in files:
        res = json.loads(f.read_text())
        assert res["status"] == "failed"
        assert res["failure"]["step"] >= 1 and "loss became" in res["failure"]["reason"]


def test_checkpoint_every_sets_how_much_a_hard_stop_loses(tmp_path):
    # A deadline (gpu_session.sh, a batch job's limit) ends a run with SIGTERM mid-epoch; with
    # --checkpoint-every 0 the state after each epoch is on disk, so the next run resumes there
    # (the default, 60 s, would have saved nothing in a run this short).
    args = ["run", "suites/smoke.yaml", "--results", str(tmp_path / "r"), "--cells", "*cnn_tiny*__kd__*", "--device", "cpu",
            "--set", "split.max_per_class=40", "--set", "teacher.epochs=4", "--set", "student.epochs=1"]
    bad = kdbench(*args, "--checkpoint-every", "-5", tmp=tmp_path)
    assert bad.returncode == 2 and "--checkpoint-every takes seconds, 0 or more; got -5.0" in bad.stderr
    env = dict(os.environ, KDBENCH_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    with subprocess.Popen([sys.executable, "-m", "kdbench", *args, "--checkpoint-every", "0"], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            if "teacher cnn_medium epoch 3/4" in line and " loss " in line:  # epoch 2's state was saved before epoch 3 began
                proc.terminate()
                break
        rest = proc.stdout.read()
    assert proc.returncode != 0 and "stopped by SIGTERM" in rest
    resumed = kdbench(*args, tmp=tmp_path, check=True)
    assert re.search(r"teacher cnn_medium: resumed after epoch [23]/4", resumed.stdout), resumed.stdout


def test_second_run_of_a_suite_is_refused_while_one_holds_it(tmp_path):
    with SuiteLock(tmp_path / "r" / "smoke"):
        proc = kdbench("run", "suites/smoke.yaml", "--results", str(tmp_path / "r"), *QUICK, tmp=tmp_path)
    assert proc.returncode == 2 and "another kdbench run" in proc.stderr


def test_skipped_bad_images_are_counted_in_every_result(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from kdbench.cli import main

    rng = np.random.default_rng(0)
    for part in ("train", "test"):
        for c in ("a", "b"):
            (tmp_path / "data" / "tree" / part / c).mkdir(parents=True)
            for i in range(6):
                Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "data" / "tree" / part / c / f"{i}.png")
    (tmp_path / "data" / "tree" / "train" / "a" / "3.png").write_bytes(b"\x89PNG truncated")
    suite = tmp_path / "folder.yaml"
    suite.write_text(
        "name: folder\nsplit: {seed: 0, train: 0.66, val: 0.34}\ndata: {skip_bad_images: true}\n"
        "matrix: {datasets: ['folder:tree@16'], teachers: [cnn_small], students: [cnn_tiny], methods: [none]}\n"
        "teacher: {epochs: 1, batch_size: 4}\nstudent: {epochs: 1, batch_size: 4}\n"
    )
    code = main(["run", str(suite), "--data-root", str(tmp_path / "data"), "--results", str(tmp_path / "r"),
                 "--cache", str(tmp_path / "c"), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    assert "skipped 1 image(s) that cannot be decoded" in out
    [res] = [json.loads(f.read_text()) for f in (tmp_path / "r" / "folder").glob("*.json")]
    assert res["data"]["skipped_files"] == 1 and res["data"]["skipped_examples"][0].endswith("3.png")
    assert res["data"]["n_train"] + res["data"]["n_val"] == 11


def test_history_csv_beside_each_result(tmp_path):
    kdbench("run", "suites/smoke.yaml", "--results", str(tmp_path / "r"), "--cells", "*cnn_tiny*none*", *QUICK, tmp=tmp_path, check=True)
    [csv_file] = list((tmp_path / "r" / "smoke").glob("*.history.csv"))
    lines = csv_file.read_text().splitlines()
    # The smoke suite's metrics are top1, f1_macro and agreement: f1_macro per epoch on validation.
    assert lines[0] == "epoch,train_loss,train_ce,train_kd,train_top1,val_top1,lr,epoch_seconds,max_memory_mib,val_f1_macro"
    assert len(lines) == 2 and lines[1].startswith("1,")
    row = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
    assert 0 < float(row["train_top1"]) <= 1 and 0 < float(row["val_f1_macro"]) <= 1
    res = json.loads(csv_file.with_name(csv_file.name.replace(".history.csv", ".json")).read_text())
    assert len(res["report"]["confusion_matrix"]) == 10
    assert 0 < res["cost"]["student_latency_ms"]["batch1_median_ms"] <= res["cost"]["student_latency_ms"]["batch1_p90_ms"]


def test_predict_single_images_with_a_trained_student(tmp_path):
    import torch
    from PIL import Image

    from kdbench.data import DATASETS
    from kdbench.predict import load_student

    kdbench("run", "suites/smoke.yaml", "--results", str(tmp_path / "r"), "--cells", "*cnn_tiny*none*", *QUICK, tmp=tmp_path, check=True)
    [result] = list((tmp_path / "r" / "smoke").glob("*.json"))
    data = DATASETS.get("fmnist-smoke").load(Path("/unused"), False, tmp_path)
    Image.fromarray(data.test_x[7, 0].numpy()).save(tmp_path / "shoe.png")  # lossless: same pixels
    proc = kdbench("predict", str(result), str(tmp_path / "shoe.png"), "--top-k", "2", tmp=tmp_path, check=True)
    model, norm = load_student(result)
    x = (data.test_x[7:8].float() / 255 - torch.tensor(norm["mean"]).view(1, -1, 1, 1)) / torch.tensor(norm["std"]).view(1, -1, 1, 1)
    expected = norm["classes"][int(model(x).argmax())]
    assert f"|      1 | {expected}" in proc.stdout.replace(str(tmp_path / "shoe.png"), "") and "Warning" not in proc.stderr
    # An unreadable file among good ones is named; the good ones are still classified.
    (tmp_path / "torn.png").write_bytes(b"\x89PNG not really")
    mixed = kdbench("predict", str(result), str(tmp_path / "torn.png"), str(tmp_path / "shoe.png"), tmp=tmp_path)
    assert mixed.returncode == 1 and f"|      1 | {expected}" in mixed.stdout.replace(str(tmp_path / "shoe.png"), "")
    assert f"{tmp_path / 'torn.png'}: cannot decode image" in mixed.stderr and "Traceback" not in mixed.stderr
    res = json.loads(result.read_text())
    assert res["cost"]["student_flops_per_image"] > 0 and res["cost"]["student_test_images_per_s"] > 0
    assert res["cost"]["student_test_passes"] == 3 and res["cost"]["student_test_images_per_s_spread"] >= 0
    # Damaged weights are refused, not used.
    result.with_suffix(".pt").write_bytes(b"garbage")
    bad = kdbench("predict", str(result), str(tmp_path / "shoe.png"), tmp=tmp_path)
    assert bad.returncode == 2 and "weights do not match the sha256" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.smoke
def test_teacher_logits_are_cached_on_disk_and_checked(tmp_path):
    base = ["run", "suites/smoke.yaml", "--set", "split.max_per_class=20", *QUICK]
    kdbench(*base, "--results", str(tmp_path / "r1"), "--cells", "*cnn_tiny__fp32__kd*", tmp=tmp_path, check=True)
    second = kdbench(*base, "--results", str(tmp_path / "r2"), "--cells", "*cnn_small__fp32__kd*", tmp=tmp_path, check=True)
    assert "teacher logits on the training split: from cache" in second.stdout
    [cached] = (tmp_path / "cache" / "teacher_logits").glob("*.pt")
    blob = torch.load(cached, weights_only=True)
    blob["logits"][0, 0] += 1.0  # different logits under the old hash
    torch.save(blob, cached)
    third = kdbench(*base, "--results", str(tmp_path / "r3"), "--cells", "*cnn_small__fp32__kd*", tmp=tmp_path, check=True)
    assert "teacher-logit cache" in third.stdout and "is corrupt" in third.stdout
    [a], [b] = ((tmp_path / r / "smoke").glob("*.json") for r in ("r2", "r3"))
    assert json.loads(a.read_text())["student"]["weights_sha256"] == json.loads(b.read_text())["student"]["weights_sha256"]


def test_progress_line_between_cells():
    from kdbench.results import duration_text, progress_text

    assert progress_text(120.0, 2, 5) == "2m00s elapsed, about 3m00s left at this pace"
    assert progress_text(120.0, 2, 5, 1800.0, 3) == ("2m00s elapsed, about 30m00s left "
                                                    "(3 trainings at the epoch pace seen so far, and the cells' evaluation)")
    assert duration_text(3725) == "1h02m" and duration_text(59.6) == "1m00s" and duration_text(7) == "7s"


def test_the_line_between_cells_times_the_trainings_left(tmp_path, isolated_cache):
    """What a run has left counts each training still to run once (the teacher its students
    share; a cached one not at all), each at its own stage's epoch pace, a stage not seen yet at
    the median of those seen: not the mean time per cell so far, which the first cell's
    teacher inflated (canonical-cifar: "about 1h03m left" when 29 min were)."""
    from kdbench.runner import Runner, RunOptions
    from kdbench.suite import load_suite

    suite = load_suite(REPO / "suites" / "smoke.yaml")
    runner = Runner(suite, RunOptions(results_dir=tmp_path, cache_dir=isolated_cache, log=lambda line: None))
    cells = suite.cells()  # cnn_medium → cnn_tiny, cnn_small, each alone and with KD: 6 epochs a training
    assert len(cells) == 4 and runner.time_left(cells) is None, "no epoch seen: no pace"
    line = "    {} epoch {}/6  loss 0.5000  val_top1 0.8000  lr 0.05  {}s"
    for epoch in (1, 2, 3):
        runner.fit_log(line.format("teacher cnn_medium", epoch, "10.0"))
        runner.fit_log(line.format("student cnn_tiny [none]", epoch, "2.0"))
    # The teacher once (6 × 10 s), cnn_tiny alone (6 × 2 s), three students not seen (6 × 6 s each).
    assert runner.time_left(cells) == (60 + 12 + 3 * 36, 5)
    teacher_key = runner.training_keys(cells[0])[0][0]
    (isolated_cache / "teachers").mkdir(parents=True, exist_ok=True)
    (isolated_cache / "teachers" / f"{teacher_key}.pt").write_bytes(b"")
    assert runner.time_left(cells) == (12 + 3 * 36, 4), "a cached teacher is not trained again"
    assert runner.time_left(cells[2:]) == (2 * 36, 2)
    # 3 epochs each of two trainings seen (36 s); 2 cells ran in 100 s: 32 s a cell outside epochs.
    assert runner.time_left(cells[2:], elapsed=100.0, ran=2) == (2 * 36 + 2 * 32, 2), "and each cell's evaluation"


def test_epoch_lines_say_how_long_their_training_has_left():
    from kdbench.results import StagePace

    out: list[str] = []
    pace = StagePace(out.append)
    line = "    teacher vgg16 epoch {}/{}  loss 0.4837  val_top1 0.8000  lr 0.0001  {}s"
    for epoch, seconds in ((1, "10.0"), (2, "30.0"), (3, "12.0"), (4, "99.0")):
        pace(line.format(epoch, 4, seconds))
    pace(line.format(1, 4, "50.0"))  # the same stage name in the next cell: paced by its own epochs
    pace(line.format(7, 10, "5.0"))  # a resumed training
    pace("    teacher vgg16 epoch 8/10  step 32/57  410 img/s")  # a within-epoch note is passed as it is
    assert [o.rsplit("  ", 1)[-1] for o in out] == [
        "(at most 30s left)", "(at most 40s left)", "(at most 12s left)", "99.0s",
        "(at most 2m30s left)", "(at most 15s left)", "410 img/s"]
    assert pace.epochs_total_s == 10 + 30 + 12 + 99 + 50 + 5 and pace.epoch_seconds() == {"teacher vgg16": 5.0}


def test_list_with_results_shows_where_each_cell_stands(tmp_path, capsys):
    from kdbench.cli import main

    folder = tmp_path / "r" / "smoke"
    r = committed_smoke_result("fmnist-smoke__cnn_medium__cnn_small__fp32__kd__s0.json", folder)
    # Another result from another student recipe: a re-run would redo it.
    committed_smoke_result("fmnist-smoke__cnn_medium__cnn_small__fp32__none__s0.json", folder, student_recipe="0" * 64)
    (folder / "fmnist-smoke__cnn_medium__cnn_tiny__fp32__kd__s0.json").write_text("{torn")
    assert main(["list", "suites/smoke.yaml", "--results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    top1 = r["metrics"]["test_top1_last"]
    assert f"fmnist-smoke__cnn_medium__cnn_small__fp32__kd__s0  ok  test top-1 {100 * top1:.2f} % on cpu" in out
    assert "fmnist-smoke__cnn_medium__cnn_small__fp32__none__s0  stale  test top-1" in out
    assert "changed since: student_recipe (a re-run redoes it)" in out
    assert "fmnist-smoke__cnn_medium__cnn_tiny__fp32__kd__s0  unreadable  JSONDecodeError" in out
    assert "fmnist-smoke__cnn_medium__cnn_tiny__fp32__none__s0  not run" in out
    assert "1 not run" in out and "1 ok" in out and "1 stale" in out and "1 unreadable" in out


def test_a_result_is_current_exactly_when_a_rerun_would_keep_it(tmp_path):
    """config_changes (what kdbench list reports) agrees with Runner.finished (what a run skips)."""
    from kdbench.runner import Runner, RunOptions
    from kdbench.suite import load_suite, spec_hash

    suite = load_suite(REPO / "suites" / "smoke.yaml")
    runner = Runner(suite, RunOptions(results_dir=tmp_path))
    cell = suite.cells()[0]
    config = runner.ids.cell_config(cell)
    path = runner.result_path(cell)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"status": "ok", "config": config, "config_hash": spec_hash(config)}))
    assert runner.finished(cell) and runner.ids.config_changes(cell, json.loads(path.read_text())) == []
    moved = dict(config, code="0" * 64, kd="1" * 64)
    path.write_text(json.dumps({"status": "ok", "config": moved, "config_hash": spec_hash(moved)}))
    assert not runner.finished(cell) and runner.ids.config_changes(cell, json.loads(path.read_text())) == ["code", "kd"]


def test_code_text_drops_what_python_ignores_and_keeps_strings_whole():
    from kdbench.fingerprint import code_text

    src = 'x = 1  # why\n\n\ndef f():   \n    # a comment line\n    return "#not a comment"\n'
    assert code_text(src) == 'x = 1\ndef f():\n    return "#not a comment"'
    doc = 'def g():\n    """Doc.\n\n    More.   \n    """\n    return 2\n'
    assert code_text(doc) == doc.rstrip("\n"), "a multi-line string keeps its blank lines and spaces"
    assert code_text(doc.replace("More.", "Less.")) != code_text(doc)
    assert code_text("y = (1 +\n     2)  # sum\n") == "y = (1 +\n     2)"
    # Python ≥ 3.12 tokenizes an f-string in parts: its lines are still kept whole, so results
    # made on one Python are current on another (checked on 3.10-3.13 when written).
    fstring = 'z = f"""a {\n\n1 +   \n2} b"""\n'
    assert code_text(fstring) == fstring.rstrip("\n")


def test_comment_edits_keep_results_current_code_edits_do_not(tmp_path, monkeypatch):
    """Editing a comment in the training code leaves finished results current (results from
    before this rule, which hold the raw files' fingerprint, only while the bytes match)."""
    import kdbench.fingerprint as fingerprint_module
    from kdbench.runner import Runner, RunOptions
    from kdbench.suite import load_suite, spec_hash

    suite = load_suite(REPO / "suites" / "smoke.yaml")
    cell = suite.cells()[0]
    before = Runner(suite, RunOptions(results_dir=tmp_path))
    config = before.ids.cell_config(cell)
    current = {"status": "ok", "config": config, "config_hash": spec_hash(config)}
    raw = dict(config, code=before.ids.raw_code[""])
    older = {"status": "ok", "config": raw, "config_hash": spec_hash(raw)}
    assert before.ids.config_changes(cell, current) == [] and before.ids.config_changes(cell, older) == []
    real_read_bytes = fingerprint_module.Path.read_bytes

    def edited(extra: bytes):
        monkeypatch.setattr(fingerprint_module.Path, "read_bytes", lambda self: real_read_bytes(self) + (extra if self.name == "train.py" else b""))
        return Runner(suite, RunOptions(results_dir=tmp_path))

    commented = edited(b"\n# a note on the loop\n")
    assert commented.ids.config_changes(cell, current) == [], "a comment is not training code"
    assert commented.ids.config_changes(cell, older) == ["code"], "the raw bytes changed"
    assert edited(b"\nEDITED = 1\n").ids.config_changes(cell, current) == ["code"]


def test_fp8_cells_alone_are_keyed_to_the_fp8_training_code(tmp_path, monkeypatch):
    """fp8 training runs through kdbench/fp8.py: an edit there re-runs fp8 cells and keeps the others."""
    import kdbench.fingerprint as fingerprint_module
    from kdbench.runner import Runner, RunOptions
    from kdbench.suite import load_suite

    suite = load_suite(REPO / "suites" / "smoke.yaml", ("matrix.precisions=[fp32, fp8]",))
    fp32, fp8 = (next(c for c in suite.cells() if c.precision == p) for p in ("fp32", "fp8"))
    before = Runner(suite, RunOptions(results_dir=tmp_path))
    real_read_bytes = fingerprint_module.Path.read_bytes
    monkeypatch.setattr(fingerprint_module.Path, "read_bytes",
                        lambda self: real_read_bytes(self) + (b"\nEDITED = 1\n" if self.name == "fp8.py" else b""))
    after = Runner(suite, RunOptions(results_dir=tmp_path))
    assert after.ids.cell_config(fp32) == before.ids.cell_config(fp32)
    assert after.ids.cell_config(fp8)["code"] != before.ids.cell_config(fp8)["code"]
    assert before.ids.cell_config(fp8)["code"] != before.ids.cell_config(fp32)["code"]


def test_a_run_says_why_finished_cells_run_again(tmp_path):
    """A finished result made with another recipe is re-run, and the run says what changed."""
    from kdbench.runner import Runner, RunOptions
    from kdbench.suite import load_suite, spec_hash

    suite = load_suite(REPO / "suites" / "smoke.yaml")
    logs: list[str] = []
    runner = Runner(suite, RunOptions(results_dir=tmp_path, log=logs.append))
    cells = suite.cells()[:2]
    for cell in cells:
        config = dict(runner.ids.cell_config(cell), student_recipe="0" * 64)
        path = runner.result_path(cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"status": "ok", "config": config, "config_hash": spec_hash(config)}))
    runner.log_stale(cells)
    assert logs == ["[suite] 2 of them finished before with another configuration and run again (changed since: student_recipe ×2)"]


def test_a_selection_of_no_cell_says_why_and_shows_an_id(tmp_path, capsys):
    """--cells that matches nothing names the glob and shows a real id to copy; an empty
    --shard (more shards than teacher groups) says so rather than blaming the glob."""
    from kdbench.cli import main

    suite = str(REPO / "suites" / "smoke.yaml")
    assert main(["run", suite, "--cells", "cnn_tiny", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no cell of smoke matches --cells 'cnn_tiny'" in err and "fmnist-smoke__cnn_medium__" in err and "--shard" not in err
    assert main(["run", suite, "--cells", "*cnn_tiny*", "--shard", "2/2", "--results", str(tmp_path)]) == 2
    assert "--shard 2/2 of smoke is empty: the 2 cells selected form 1 teacher group(s)" in capsys.readouterr().err
    assert main(["cost", suite, "--cells", "cnn_tiny"]) == 2
    assert "no cell of smoke matches --cells 'cnn_tiny'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "nothing ran, nothing written"
