from pathlib import Path

import pytest
import yaml

from kdbench.errors import SuiteError
from kdbench.suite import load_suite, parse_suite

REPO = Path(__file__).resolve().parents[1]
SMOKE = (REPO / "suites" / "smoke.yaml").read_text()


def mutate(**changes) -> str:
    doc = yaml.safe_load(SMOKE)
    for dotted, value in changes.items():
        node = doc
        *parents, last = dotted.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    return yaml.safe_dump(doc)


def error_of(text: str, *overrides: str) -> SuiteError:
    with pytest.raises(SuiteError) as e:
        parse_suite(text, "suites/x.yaml", overrides)
    return e.value


def test_every_shipped_suite_loads_and_expands():
    for path in sorted((REPO / "suites").glob("*.yaml")):
        suite = load_suite(path)
        cells = suite.cells()
        assert cells, path
        assert len({c.id for c in cells}) == len(cells), f"duplicate cell ids in {path}"


def test_unknown_model_names_path_and_suggestion():
    e = error_of(mutate(matrix__students=["cnn_tiny", "cnn_smal"]))
    assert str(e).startswith("suites/x.yaml: matrix.students[1]: unknown model 'cnn_smal' (did you mean 'cnn_small'")


def test_unknown_key_suggests_the_right_one():
    doc = yaml.safe_load(SMOKE)
    doc["teacher"]["epoch"] = 3
    e = error_of(yaml.safe_dump(doc))
    assert "teacher.epoch: unknown key 'epoch' (did you mean 'epochs'?)" in str(e)


@pytest.mark.parametrize(
    "changes, where, words",
    [
        ({"teacher__epochs": -1}, "teacher.epochs", "must be ≥ 1"),
        ({"teacher__epochs": "five"}, "teacher.epochs", "expected an integer"),
        ({"kd__temperature": 0}, "kd.temperature", "must be a finite number > 0"),
        ({"kd__kd_weight": 1.5}, "kd.kd_weight", "must be in [0, 1]"),
        ({"kd__dkd_warmup_epochs": -1}, "kd.dkd_warmup_epochs", "must be ≥ 0 (0: no ramp)"),
        ({"kd__dkd_warmup_epochs": 2.5}, "kd.dkd_warmup_epochs", "expected an integer"),
        ({"split__val": 0.3}, "split", "must be 1"),
        ({"matrix__precisions": ["fp64"]}, "matrix.precisions[0]", "unknown precision 'fp64'"),
        ({"matrix__methods": ["kd", "kd"]}, "matrix.methods[1]", "duplicate method"),
        ({"matrix__datasets": []}, "matrix.datasets", "needs at least one dataset"),
        ({"matrix__datasets": ["fashion-mnst"]}, "matrix.datasets[0]", "did you mean 'fashion-mnist'"),
        ({"student__optimizer__name": "adamw2"}, "student.optimizer.name", "did you mean 'adamw'"),
        ({"seeds": []}, "seeds", "at least one seed"),
        ({"student__cuda_graph": True, "student__compile": True}, "student.cuda_graph", "not both"),
        ({"student__grad_checkpointing": True, "student__compile": True}, "student.grad_checkpointing", "not tested with compile"),
        ({"teacher__grad_checkpointing": True, "teacher__cuda_graph": True}, "teacher.grad_checkpointing", "not tested with compile or cuda_graph"),
        ({"teacher__train_metrics_each_epoch": True}, "teacher.train_metrics_each_epoch", "is a student option"),
        ({"teacher__test_each_epoch": True}, "teacher.test_each_epoch", "is a student option"),
        ({"split__test": 0.1, "split__train": 0.8}, "matrix.datasets[0]", "has its own test split"),
    ],
)
def test_bad_values_are_rejected_with_their_path(changes, where, words):
    e = error_of(mutate(**changes))
    assert e.path == where
    assert words in str(e)


def test_yaml_syntax_error_gives_line():
    e = error_of("name: x\nmatrix: [unclosed\n")
    assert "not valid YAML" in str(e) and "line" in e.path


def test_missing_required_key():
    e = error_of("name: x\n")
    assert e.path == "matrix" and "required" in str(e)


def test_cell_ids_are_stable_under_reformatting_and_additions():
    base = {c.id for c in parse_suite(SMOKE, "a").cells()}
    reformatted = yaml.safe_dump(yaml.safe_load(SMOKE), default_flow_style=True, sort_keys=True)
    assert {c.id for c in parse_suite(reformatted, "b").cells()} == base
    wider = parse_suite(mutate(matrix__students=["cnn_small", "resnet18_cifar", "cnn_tiny"], seeds=[0, 1]), "c")
    assert base < {c.id for c in wider.cells()}
    assert "fmnist-smoke__cnn_medium__cnn_tiny__fp32__kd__s0" in base


def test_override_is_validated_like_the_file():
    suite = parse_suite(SMOKE, "s", ("student.epochs=2", "seeds=[3, 4]"))
    assert suite.spec.student.epochs == 2 and suite.spec.seeds == (3, 4)
    e = error_of(SMOKE, "student.epochs=0")
    assert e.path == "student.epochs"
    e = error_of(SMOKE, "student.epohs=2")
    assert "did you mean 'epochs'" in str(e)


def test_timm_models_are_accepted_by_name():
    suite = parse_suite(mutate(matrix__students=["timm/resnet18"]), "s")
    assert suite.cells()[0].id.split("__")[2] == "timm-resnet18"
    e = error_of(mutate(matrix__students=["timm/resnet181"]))
    assert "unknown model 'timm/resnet181'" in str(e)


def test_takd_chains_expand_and_validate():
    doc = yaml.safe_load(SMOKE)
    del doc["matrix"]["teachers"], doc["matrix"]["students"]
    doc["matrix"]["pairs"] = [["cnn_medium", "cnn_small", "cnn_tiny"]]
    doc["matrix"]["methods"] = ["none", "kd", "takd"]
    ids = [c.id for c in parse_suite(yaml.safe_dump(doc), "t").cells()]
    assert ids == [
        "fmnist-smoke__cnn_medium__cnn_tiny__fp32__none__s0",
        "fmnist-smoke__cnn_medium__cnn_tiny__fp32__kd__s0",
        "fmnist-smoke__cnn_medium~cnn_small__cnn_tiny__fp32__takd__s0",
    ]
    doc["matrix"]["pairs"] = [["cnn_medium", "cnn_tiny"]]
    e = error_of(yaml.safe_dump(doc))
    assert e.path == "matrix.pairs[0]" and "takd needs an assistant" in str(e)
    e = error_of(mutate(matrix__methods=["none", "takd"]))
    assert e.path == "matrix.methods" and "needs chains" in str(e)


def test_overrides_and_sweeps_of_an_aliased_recipe_change_only_that_recipe():
    """student: *teacher and <<: *teacher share objects in the parsed YAML; --set student.… and
    a student sweep must not reach the teacher (whose cache key would change with it)."""
    s5 = load_suite(REPO / "suites" / "s5-imagenette.yaml", ("student.epochs=3",))  # student: *recipe
    assert (s5.spec.teacher.epochs, s5.spec.student.epochs) == (20, 3)
    s1 = load_suite(REPO / "suites" / "s1-cifar10.yaml", ("student.optimizer.lr=0.5",))  # <<: *teacher
    assert (s1.spec.teacher.optimizer.lr, s1.spec.student.optimizer.lr) == (0.001, 0.5)
    swept = load_suite(REPO / "suites" / "s1-cifar10.yaml", ("sweep={field: student.optimizer.lr, values: [0.1, 0.2]}",))
    assert [v.student.optimizer.lr for _, v in swept.variants] == [0.1, 0.2]
    assert {v.teacher.optimizer.lr for _, v in swept.variants} == {0.001}


def test_kd_by_pair_gives_one_pair_its_own_kd_settings():
    """canonical-cifar sets DKD's beta per pair as DKD's own CIFAR configs do; the pairs take
    the rest of the suite's kd, and an override of kd.* reaches them; one of a field some pair
    sets itself would reach only the others, so it is refused unless kd_by_pair is emptied
    first."""
    suite = load_suite(REPO / "suites" / "canonical-cifar.yaml")
    cells = {c.id: c for c in suite.cells()}

    def kd_of(s, pair, method="dkd"):
        return s.spec_of(cells[f"fmnist-smoke__{pair}__bf16__{method}__s0"]).kd

    assert (kd_of(suite, "resnet56__resnet20").dkd_beta, kd_of(suite, "wrn_40_2__wrn_16_2").dkd_beta) == (2.0, 6.0)
    assert kd_of(suite, "resnet32x4__resnet8x4") == suite.spec.kd, "no entry: the suite's kd"
    assert kd_of(suite, "resnet56__resnet20").dkd_warmup_epochs == suite.spec.kd.dkd_warmup_epochs == 20
    changed = load_suite(REPO / "suites" / "canonical-cifar.yaml", ("kd.temperature=2.0",))
    assert (kd_of(changed, "resnet56__resnet20").temperature, kd_of(changed, "resnet56__resnet20").dkd_beta) == (2.0, 2.0)
    for where, overrides in [("--set kd.dkd_beta", ("kd.dkd_beta=5.0",)), ("sweep.field", ("sweep={field: kd.dkd_beta, values: [1, 5]}",))]:
        with pytest.raises(SuiteError) as e:
            load_suite(REPO / "suites" / "canonical-cifar.yaml", overrides)
        assert e.value.path == where and "resnet56 → resnet20 (dkd_beta)" in str(e.value) and "kd_by_pair=[] first" in str(e.value)
    every = load_suite(REPO / "suites" / "canonical-cifar.yaml", ("kd_by_pair=[]", "kd.dkd_beta=5.0"))
    assert {kd_of(every, p).dkd_beta for p in ("resnet56__resnet20", "wrn_40_2__wrn_16_2", "resnet32x4__resnet8x4")} == {5.0}
    swept = load_suite(REPO / "suites" / "canonical-cifar.yaml", ("sweep={field: kd.dkd_alpha, values: [1, 2]}",))
    assert [(v.kd.dkd_alpha, {p.kd.dkd_alpha for p in v.kd_by_pair}) for _, v in swept.variants] == [(1.0, {1.0}), (2.0, {2.0})]


def test_a_distilled_cells_key_holds_only_the_kd_settings_its_method_reads():
    """DKD's weights do not re-run a KD cell, nor KD's a DKD cell; the keys of cells made
    before the split (every suite at the unread fields' defaults) stay as they were."""
    from kdbench.identity import CellIdentity
    from kdbench.suite import spec_hash

    def kd_keys(*overrides):
        suite = load_suite(REPO / "suites" / "canonical-cifar.yaml", overrides)
        ids = CellIdentity(suite, "cpu", {})
        return {c.method: ids.cell_config(c)["kd"] for c in suite.cells() if c.id.startswith("fmnist-smoke__resnet56__resnet20__")}

    base = kd_keys()
    assert base["none"] is None
    beta = kd_keys("kd_by_pair=[]")
    assert beta["kd"] == base["kd"] and beta["dkd"] != base["dkd"]
    weights = kd_keys("kd.ce_weight=0.5", "kd.kd_weight=0.5")
    assert weights["dkd"] == base["dkd"] and weights["kd"] != base["kd"]
    smoke = load_suite(REPO / "suites" / "smoke.yaml")
    kd_cell = next(c for c in smoke.cells() if c.method == "kd")
    assert CellIdentity(smoke, "cpu", {}).cell_config(kd_cell)["kd"] == spec_hash(smoke.spec.kd), "as before the split"


@pytest.mark.parametrize(
    "entry, where, words",
    [
        ({"teacher": "resnet56", "student": "resnet8x4", "kd": {"dkd_beta": 2.0}}, "kd_by_pair[0]", "is not a teacher → student pair of the matrix"),
        ({"teacher": "resnet56", "student": "resnet20", "kd": {"dkd_bta": 2.0}}, "kd_by_pair[0].kd.dkd_bta", "did you mean 'dkd_beta'"),
        ({"teacher": "resnet56", "student": "resnet20", "kd": {"dkd_beta": -1.0}}, "kd_by_pair[0].kd.dkd_beta", "must be a finite number ≥ 0"),
    ],
)
def test_bad_kd_by_pair_entries_are_rejected_with_their_path(entry, where, words):
    doc = yaml.safe_load((REPO / "suites" / "canonical-cifar.yaml").read_text())
    doc["kd_by_pair"] = [entry]
    e = error_of(yaml.safe_dump(doc))
    assert e.path == where and words in str(e), str(e)


def test_a_pair_given_twice_in_kd_by_pair_is_rejected():
    doc = yaml.safe_load((REPO / "suites" / "canonical-cifar.yaml").read_text())
    doc["kd_by_pair"] = [{"teacher": "resnet56", "student": "resnet20", "kd": {"dkd_beta": b}} for b in (2.0, 3.0)]
    e = error_of(yaml.safe_dump(doc))
    assert e.path == "kd_by_pair[1]" and "a second entry for resnet56 → resnet20" in str(e)


def test_a_pinned_teacher_seed_shares_one_teacher_across_seeds():
    """teacher.seed: every seed's cells share one teacher key, shard group and cost stage, and
    the students keep their own seeds; unset, each seed trains its own teacher."""
    from types import SimpleNamespace

    from kdbench.cost import suite_stages
    from kdbench.identity import CellIdentity
    from kdbench.suite import select_cells

    from .test_cost import SMOKE_SHAPE

    prepared = SimpleNamespace(data=SimpleNamespace(fingerprint="d"), split=SimpleNamespace(fingerprint="s"))

    def expand(*overrides):
        suite = parse_suite(SMOKE, "s.yaml", ("seeds=[0,1,2]", *overrides))
        ids = CellIdentity(suite, "cpu", {})
        return suite, {c.id: (ids.teacher_key(c, prepared), ids.cell_config(c)) for c in suite.cells()}

    own, own_keys = expand()
    pinned, pinned_keys = expand("teacher.seed=1")
    assert [c.id for c in pinned.cells()] == [c.id for c in own.cells()], "pinning changes no cell id"
    assert len({k for k, _ in own_keys.values()}) == 3 and [c.teacher_seed for c in own.cells()] == [c.seed for c in own.cells()]
    assert {c.teacher_seed for c in pinned.cells()} == {1} and {c.seed for c in pinned.cells()} == {0, 1, 2}, "students keep their seeds"
    seed_1_teacher = {k for c, (k, _) in zip(own.cells(), own_keys.values(), strict=True) if c.seed == 1}
    assert {k for k, _ in pinned_keys.values()} == seed_1_teacher, "the pinned teacher is seed 1's own: one cache"
    for c in pinned.cells():
        config, unpinned = pinned_keys[c.id][1], own_keys[c.id][1]
        # Seed 1's cells run exactly as unpinned (their results stay current); the others
        # distil from another teacher than before, which their configuration says.
        assert config == unpinned if c.seed == 1 else config == dict(unpinned, teacher_seed=1)
    assert select_cells(pinned.cells(), shard="2/2") == [] and select_cells(own.cells(), shard="2/2")
    roles = [s.role for s in suite_stages(pinned, pinned.cells(), SMOKE_SHAPE)]
    assert roles.count("teacher") == 1 and [s.role for s in suite_stages(own, own.cells(), SMOKE_SHAPE)].count("teacher") == 3
    swept = parse_suite(SMOKE, "s.yaml", ("sweep={field: teacher.seed, values: [3, 4]}",))
    assert {c.variant: c.teacher_seed for c in swept.cells()} == {"teacher.seed=3": 3, "teacher.seed=4": 4}


@pytest.mark.parametrize(
    ("override", "where", "words"),
    [("student.seed=1", "student.seed", "only the teacher can be pinned"), ("teacher.seed=-1", "teacher.seed", "must be ≥ 0")],
)
def test_bad_pinned_seeds_are_rejected_with_their_path(override, where, words):
    e = error_of(SMOKE, override)
    assert where in str(e) and words in str(e), str(e)
