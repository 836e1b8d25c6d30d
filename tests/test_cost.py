"""kdbench cost: the compute of a suite's trainings, counted the way the runner trains them."""

from __future__ import annotations

from kdbench.cost import Shape, cost_table, flops_text, replayed_versions, suite_stages
from kdbench.models import build_model, count_flops
from kdbench.suite import load_suite, parse_suite

from .conftest import REPO, SMOKE_RESULTS, committed_smoke_result

SMOKE_SHAPE = {"fmnist-smoke": Shape(channels=1, image_size=28, num_classes=10, n_train=1800, n_val=200)}


def fwd(name: str) -> int:
    return count_flops(build_model(name, 1, 10, 28), 1, 28)


def test_smoke_suite_counts_the_teacher_once_and_its_cached_logits_once():
    suite = load_suite(REPO / "suites" / "smoke.yaml")  # no augmentation: teacher logits cached, one version
    stages = suite_stages(suite, suite.cells(), SMOKE_SHAPE)
    roles = [s.role for s in stages]
    assert roles.count("teacher") == 1 and roles.count("teacher logits") == 1 and roles.count("student") == 4
    teacher = next(s for s in stages if s.role == "teacher")
    t = fwd("cnn_medium")
    assert teacher.forward_flops == t and len(teacher.cells) == 4
    assert teacher.flops == 6 * (3 * t * 1800 + t * 200)  # 6 epochs of training steps and validation
    logits = next(s for s in stages if s.role == "teacher logits")
    assert logits.flops == t * 1800
    s = fwd("cnn_tiny")
    tiny = [st for st in stages if st.model == "cnn_tiny"]
    assert {st.teacher_passes for st in tiny} == {"", "cached ×1"} and all(st.flops == 6 * (3 * s * 1800 + s * 200) for st in tiny)
    assert sum(st.flops for st in stages) == teacher.flops + logits.flops + sum(st.flops for st in stages if st.role == "student")


def test_augmented_students_pay_a_teacher_forward_every_step_and_flip_replays_two_versions():
    text = (REPO / "suites" / "smoke.yaml").read_text()
    crop = parse_suite(text, "x.yaml", ("student.augment=[flip, crop]",))
    kd = [s for s in suite_stages(crop, crop.cells(), SMOKE_SHAPE) if s.role == "student" and s.teacher_passes]
    t, s = fwd("cnn_medium"), fwd("cnn_tiny")
    tiny = next(st for st in kd if st.model == "cnn_tiny")
    assert tiny.teacher_passes == "every step" and tiny.flops == 6 * (3 * s * 1800 + s * 200) + 6 * t * 1800
    flip = parse_suite(text, "x.yaml", ("student.augment=[flip]",))
    logits = [st for st in suite_stages(flip, flip.cells(), SMOKE_SHAPE) if st.role == "teacher logits"]
    assert len(logits) == 1 and logits[0].flops == 2 * t * 1800
    assert replayed_versions(()) == 1 and replayed_versions(("flip",)) == 2 and replayed_versions(("flip", "crop")) is None


def test_takd_assistants_are_trained_once_per_chain_and_distil_every_step():
    text = (REPO / "suites" / "smoke.yaml").read_text().replace(
        "  teachers: [cnn_medium]\n  students: [cnn_tiny, cnn_small]", "  pairs: [[cnn_medium, cnn_small, cnn_tiny]]")
    suite = parse_suite(text, "x.yaml", ("matrix.methods=[none, kd, takd]",))
    stages = suite_stages(suite, suite.cells(), SMOKE_SHAPE)
    assistant = [st for st in stages if st.role == "assistant"]
    assert len(assistant) == 1 and assistant[0].model == "cnn_small" and assistant[0].teacher_passes == "every step"
    a, t = fwd("cnn_small"), fwd("cnn_medium")
    assert assistant[0].flops == 6 * (3 * a * 1800 + a * 200) + 6 * t * 1800
    takd = next(st for st in stages if st.role == "student" and st.cells[0].endswith("__takd__s0"))
    assert takd.teacher_passes == "cached ×1"  # the student learns from the assistant's cached logits
    logits = [st for st in stages if st.role == "teacher logits"]
    assert sorted(st.model for st in logits) == ["cnn_medium", "cnn_small"]


def test_table_and_units():
    suite = load_suite(REPO / "suites" / "smoke.yaml")
    table = cost_table(suite_stages(suite, suite.cells(), SMOKE_SHAPE), tflops=1.0)
    assert "| teacher " in table and "4 cells" in table and "at 1 TFLOP/s" in table
    assert flops_text(8.62e14) == "862 TFLOP" and flops_text(1.24e15) == "1.24 PFLOP" and flops_text(5e8) == "0.5 GFLOP"


def test_cost_command_on_the_shipped_smoke_data(capsys):
    from kdbench.cli import main

    assert main(["cost", "suites/smoke.yaml", "--tflops", "0.05"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("smoke: 4 cells, 6 trainings and teacher-logit tables")
    assert "| teacher        | cnn_medium | fmnist-smoke | 6        | 1,800 " in out
    assert out.rstrip().splitlines()[-1].startswith("total: 2.39 TFLOP; at 0.05 TFLOP/s sustained: 48 s")


def test_cost_leaves_out_what_a_results_folder_already_holds(tmp_path, capsys):
    """Cells with a current result need none of their trainings: seed 0 done, seed 9 left."""
    from kdbench.cli import main

    folder = tmp_path / "smoke"
    for p in SMOKE_RESULTS.glob("*__s0.json"):
        committed_smoke_result(p.name, folder)
    assert main(["cost", "suites/smoke.yaml", "--set", "seeds=[0, 9]", "--results", str(tmp_path)]) == 0
    last = capsys.readouterr().out.rstrip().splitlines()[-2:]
    assert last[0] == "total: 4.78 TFLOP"
    assert last[1] == f"left to run: 2.39 TFLOP (4 of 8 cells have a current result in {folder})"


def test_cost_times_trainings_by_the_epochs_measured_in_earlier_results(tmp_path, capsys):
    """--timed-by: each training's recipe epochs at the seconds per epoch an earlier result of
    the same kind of training measured (median after the first epoch); untimed ones say so."""
    import json
    import statistics

    from kdbench.cli import main

    name = "fmnist-smoke__cnn_medium__cnn_small__fp32__kd__s0.json"
    r = committed_smoke_result(name, tmp_path / "smoke")
    teacher_epoch = statistics.median([h["epoch_seconds"] for h in r["teacher"]["history"]][1:])
    student_epoch = statistics.median([h["epoch_seconds"] for h in r["student"]["history"]][1:])
    assert main(["cost", "suites/smoke.yaml", "--timed-by", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = {tuple(c.strip() for c in line.split("|")[1:3] + line.split("|")[7:8]): line for line in out.splitlines() if line.startswith("| ")}
    assert f"| {teacher_epoch:.3g} " in rows["teacher", "cnn_medium", ""]
    assert f"| {student_epoch:.3g} " in rows["student", "cnn_small", "cached ×1"]
    assert rows["student", "cnn_small", ""].rstrip(" |").endswith("—"), "cnn_small alone: no result of that kind"
    total = out.rstrip().splitlines()[-1]
    assert total.endswith("for 2 of 5 trainings (the others are not measured on that device and not in it)"), total
    # The timing names the hardware it came from, and warns when this machine is other hardware.
    import torch

    from kdbench.determinism import environment, hardware

    here = environment(torch.device("cpu"))
    result_file = tmp_path / "smoke" / name
    for env, warned in ((dict(r["environment"], cpu_model="Test CPU 9000", cpu_capability="AVX2"), True), (here, False)):
        result_file.write_text(json.dumps(dict(r, environment=env)))
        assert main(["cost", "suites/smoke.yaml", "--timed-by", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert f"Measured: seconds per epoch on cpu ({hardware(env)}) from 1 result" in out, out
        assert ("This machine is " + hardware(here) + ", other hardware" in out) == warned, out
    assert hardware({"cpu_model": "Test CPU 9000", "cpu_capability": "AVX2", "torch_threads": 2}) == "Test CPU 9000 (AVX2, 2 threads)"
    assert hardware({"gpu": "NVIDIA H100 80GB HBM3", "cpu_model": "x"}) == "NVIDIA H100 80GB HBM3"
    result_file.write_text(json.dumps(r))
    # Results from two device classes: the user chooses.
    other = dict(r, config=dict(r["config"], device_class="cuda-sm90"))
    (tmp_path / "smoke" / "other.json").write_text(json.dumps(other))
    assert main(["cost", "suites/smoke.yaml", "--timed-by", str(tmp_path)]) == 2
    assert "several device classes (cpu, cuda-sm90): choose one with --device-class" in capsys.readouterr().err
    assert main(["cost", "suites/smoke.yaml", "--timed-by", str(tmp_path), "--device-class", "cpu"]) == 0
    assert main(["cost", "suites/smoke.yaml", "--device-class", "cpu"]) == 2
    assert "give --timed-by too" in capsys.readouterr().err
    assert main(["cost", "suites/smoke.yaml", "--timed-by", str(tmp_path / "empty")]) == 2
    assert "no finished result in" in capsys.readouterr().err
    # Results written before TAKD and augmentation were recorded (gpu-cifar10's) time alike.
    from kdbench.cost import measured_epoch_seconds

    older = json.loads(json.dumps(r))
    del older["cell"]["assistants"], older["suite_spec"]["student"]["augment"]
    assert measured_epoch_seconds([older]) == measured_epoch_seconds([r])


def test_takd_assistants_are_timed_by_their_recorded_epochs():
    """A TAKD result's chain records each assistant's epochs; they time the assistant stage,
    which distils from the model before it every step."""
    import json

    from kdbench.cost import measured_epoch_seconds, measured_seconds

    text = (REPO / "suites" / "smoke.yaml").read_text().replace(
        "  teachers: [cnn_medium]\n  students: [cnn_tiny, cnn_small]", "  pairs: [[cnn_medium, cnn_small, cnn_tiny]]")
    suite = parse_suite(text, "x.yaml", ("matrix.methods=[takd]",))
    stages = suite_stages(suite, suite.cells(), SMOKE_SHAPE)
    r = json.loads((SMOKE_RESULTS / "fmnist-smoke__cnn_medium__cnn_small__fp32__kd__s0.json").read_text())
    r["cell"].update(student="cnn_tiny", assistants=["cnn_small"], method="takd")
    r["teacher"]["chain"] = [{"model": "cnn_small", "history": [{"epoch": e, "epoch_seconds": s} for e, s in enumerate((9.0, 2.0, 4.0), 1)]}]
    seconds = measured_epoch_seconds([r])
    assistant = next(st for st in stages if st.role == "assistant")
    assert measured_seconds(assistant, seconds) == 3.0 * 6  # the median after the first epoch, times 6 epochs
    assert all(measured_seconds(st, seconds) is not None for st in stages if st.epochs), "teacher, assistant and student all timed"


def test_gradient_checkpointing_costs_a_forward_more_and_speed_options_are_timed_apart():
    """grad_checkpointing recomputes the blocks' forward in the backward pass: 4 forward passes a
    step. An epoch measured with a speed option set (compile, cuda_graph, …) times only
    trainings with the same options: it says nothing of an epoch without them."""
    import json
    import statistics

    from kdbench.cost import measured_epoch_seconds, measured_seconds

    text = (REPO / "suites" / "smoke.yaml").read_text()
    plain = parse_suite(text, "x.yaml", ("matrix.teachers=[timm/resnet18]",))
    recomputed = parse_suite(text, "x.yaml", ("matrix.teachers=[timm/resnet18]", "teacher.grad_checkpointing=true"))
    t = count_flops(build_model("timm/resnet18", 1, 10, 28), 1, 28)
    teacher = [next(st for st in suite_stages(s, s.cells(), SMOKE_SHAPE) if st.role == "teacher") for s in (plain, recomputed)]
    assert teacher[0].flops == 6 * (3 * t * 1800 + t * 200) and teacher[1].flops == 6 * (4 * t * 1800 + t * 200)
    assert teacher[0].speed == () and teacher[1].speed == ("grad_checkpointing",)

    r = json.loads((SMOKE_RESULTS / "fmnist-smoke__cnn_medium__cnn_small__fp32__kd__s0.json").read_text())
    compiled = json.loads(json.dumps(r))
    compiled["suite_spec"]["student"]["compile"] = True
    for h in compiled["student"]["history"]:
        h["epoch_seconds"] = 0.5
    seconds = measured_epoch_seconds([r, compiled])
    cell = "fmnist-smoke__cnn_medium__cnn_small__fp32__kd__s0"

    def student_seconds(*overrides: str) -> float | None:
        suite = parse_suite(text, "x.yaml", overrides)
        return measured_seconds(next(st for st in suite_stages(suite, suite.cells(), SMOKE_SHAPE) if st.cells == [cell]), seconds)

    assert student_seconds() == statistics.median([h["epoch_seconds"] for h in r["student"]["history"]][1:]) * 6
    assert student_seconds("student.compile=true") == 0.5 * 6
    assert student_seconds("student.cuda_graph=true") is None, "no result measured an epoch with cuda_graph"
