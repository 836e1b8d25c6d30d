"""A suite's settings as frozen dataclasses: what a suite file may say, with each field's
default and what it means. ``kdbench.suite`` builds them from YAML (``typed_build``, after
``suite_checks``), expands the matrix into cells and hashes them (``spec_hash``): a field's
name and value enter result keys, so renaming one re-keys results; moving or documenting one
does not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, Union


@dataclass(frozen=True)
class OptimizerSpec:
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    # Linear LR scaling (S1's "0.001 / 32 × batch"): when set, the effective LR is
    # lr × batch_size / lr_reference_batch.
    lr_reference_batch: int | None = None


@dataclass(frozen=True)
class SchedulerSpec:
    name: Literal["none", "cosine", "step", "multistep", "plateau"] = "cosine"
    step_size: int = 30  # step: epochs between decays
    milestones: tuple[int, ...] = ()  # multistep: epochs after which the LR is multiplied by gamma
    gamma: float = 0.1  # step / plateau: decay factor
    patience: int = 2  # plateau: epochs without val improvement before decay


@dataclass(frozen=True)
class EarlyStoppingSpec:
    patience: int = 0  # 0 disables early stopping
    min_delta: float = 0.0


# A field added after results exist enters a spec's hash only when it differs from its default,
# so those results keep their hash (and stay current) while a suite leaves it unset.
HASHED_WHEN_SET = {"hashed": "when set"}


@dataclass(frozen=True)
class RecipeSpec:
    epochs: int = 10
    batch_size: int = 128
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    early_stopping: EarlyStoppingSpec = field(default_factory=EarlyStoppingSpec)
    # Which weights are evaluated on test: the last epoch's, or the epoch best on the
    # validation split. Never the best on test.
    select: Literal["last", "best_val"] = "last"
    augment: tuple[str, ...] = ()
    label_smoothing: float = 0.0
    # How an epoch's batches are drawn: "shuffle" visits every training image once (a seeded
    # permutation); "class_balanced" draws as many images with replacement, each with
    # probability ∝ 1 / its class's count (S1's WeightedRandomSampler), so rare classes are
    # seen as often as common ones.
    sampling: Literal["shuffle", "class_balanced"] = "shuffle"
    # Speed options (each keeps a run deterministic; each changes float rounding, so results
    # differ from a run without it): channels_last memory format for model and batches,
    # the optimizer's fused (single-kernel) implementation, torch.compile of the model.
    # Also evaluate on the test split after every epoch, into the history only (S2 logs test
    # metrics per epoch). Never used to select weights or stop: that is the validation split's job.
    test_each_epoch: bool = False
    channels_last: bool = False
    fused_optimizer: bool = False
    compile: bool = False
    # CUDA graphs (kdbench.graphed): the model's training forward and backward, and a per-step
    # teacher's forward, replayed from graphs captured once; CUDA only (eager elsewhere). The
    # eager step's kernels on the same inputs: trains as the eager step does.
    cuda_graph: bool = field(default=False, metadata=HASHED_WHEN_SET)
    # Also the suite's per-epoch metrics (precision, recall, F1, AUROC, …) on the training
    # pass's own predictions, into the history as train_<name> (S2 logs them per epoch on
    # train, val and test). They are the logits each step trained on (augmented images, train
    # mode), gathered as the epoch runs: no second pass over the data, and nothing trained
    # differs. Keeps an epoch's logits on the device (images × classes floats). Student stages
    # only, as test_each_epoch (teachers log their validation top-1).
    train_metrics_each_epoch: bool = field(default=False, metadata=HASHED_WHEN_SET)
    # Gradient checkpointing (kdbench.recompute; S3 uses it for memory): timm models recompute
    # each block's forward in the backward pass instead of keeping its activations. Trains
    # bitwise as without it (BatchNorm's running statistics are guarded against the double
    # update a recomputation makes); costs about one more forward a step. timm models only;
    # not with compile, cuda_graph or fp8 training.
    grad_checkpointing: bool = field(default=False, metadata=HASHED_WHEN_SET)
    # Teacher only: train the teacher with this seed for every seed of the suite, so each
    # student seed distils from one and the same teacher (cached, trained once). The spread of
    # a KD gain over seeds is then the students' alone, with no teacher-to-teacher variance in
    # it; unset, each seed trains its own teacher (the reference systems' practice). Students
    # are always seeded by the suite's seeds.
    seed: int | None = field(default=None, metadata=HASHED_WHEN_SET)


@dataclass(frozen=True)
class KDSpec:
    """Distillation weights, explicit. kd: ce_weight·CE + kd_weight·T²·KL(p_t‖p_s);
    dkd: dkd_ce_weight·CE + w(epoch)·(dkd_alpha·TCKD + dkd_beta·NCKD) (both × T²), where
    w(epoch) = min(epoch / dkd_warmup_epochs, 1) with epochs counted from 1, or 1 when
    dkd_warmup_epochs is 0. DKD's own code ramps its term in over 20 epochs on CIFAR
    (mdistiller DKD.WARMUP); without the ramp, beta 8 × T² 16 can wreck a fresh student in its
    first steps (kdbench's canonical resnet56 → resnet20 on CPU sat at chance for good)."""

    temperature: float = 4.0
    ce_weight: float = 0.1
    kd_weight: float = 0.9
    dkd_ce_weight: float = 1.0
    dkd_alpha: float = 1.0
    dkd_beta: float = 8.0
    # Off (0) unless set, and only hashed when set: the suites written before it keep their ids.
    dkd_warmup_epochs: int = field(default=0, metadata=HASHED_WHEN_SET)


# The KDSpec fields each method's loss reads (takd's stages are kd).
DKD_READS = ("temperature", "dkd_ce_weight", "dkd_alpha", "dkd_beta", "dkd_warmup_epochs")
KD_READS = ("temperature", "ce_weight", "kd_weight")


def kd_read_by(kd: KDSpec, method: str) -> KDSpec:
    """``kd`` with the fields ``method`` does not read at their defaults. Keys of distilled
    cells hash this, so a KD cell does not re-run when a DKD weight changes, nor a DKD cell
    for a KD one. (Every result made before this held the unread fields at their defaults,
    so its key is unchanged.)"""
    read = DKD_READS if method == "dkd" else KD_READS
    return dataclasses.replace(KDSpec(), **{f: getattr(kd, f) for f in read})


@dataclass(frozen=True)
class PairKDSpec:
    """The KD settings of one teacher → student pair of the matrix (of a chain: its two ends):
    the suite's ``kd`` with the fields given here over it. Published recipes tune some per
    pair: DKD's CIFAR-100 configs set beta 8 for resnet32x4 → resnet8x4, 6 for wrn_40_2 →
    wrn_16_2 and vgg13 → vgg8, 2 for resnet56 → resnet20."""

    teacher: str
    student: str
    kd: KDSpec


@dataclass(frozen=True)
class SplitSpec:
    """Stratified split of the dataset's training pool. ``test`` > 0 only for datasets that
    ship no test split of their own (their official test split is used otherwise)."""

    seed: int = 0
    train: float = 0.9
    val: float = 0.1
    test: float = 0.0
    # > 0: keep at most this many images of each class (in the split's seeded order), in the
    # pool and in an official test split alike. For tiny runs that check a suite end to end.
    max_per_class: int = 0


@dataclass(frozen=True)
class DataSpec:
    # Leave images that cannot be decoded out (logged, counted in every result) instead of
    # stopping with an error. The data fingerprint still covers the bad files.
    skip_bad_images: bool = False
    # Keep only these classes (relabelled in this order), e.g. a binary task cut from a
    # larger set. Image folders then decode only these classes.
    classes: tuple[str, ...] = ()
    # Input normalisation: "split" uses the training split's own per-channel mean and std;
    # "imagenet" the ImageNet statistics that pretrained torchvision / timm weights expect
    # (grey images use their average).
    normalize: Literal["split", "imagenet"] = "split"
    # > 0: every image is resized to this size (bilinear, on the device, batch by batch, after
    # augmentation) before the model sees it — S3's 224×224 inputs for ImageNet-pretrained
    # models on CIFAR-size data. Models are built for this size.
    resize: int = 0
    # How images reach training: "memory" decodes the whole set once into a uint8 tensor (on
    # the GPU when training there); "stream" leaves image-folder files on disk and decodes each
    # batch in DataLoader workers as it is needed (for sets too large for memory); "auto"
    # streams only above 4 GiB of decoded pixels. Results are bitwise the same either way.
    loading: Literal["auto", "memory", "stream"] = "auto"
    # DataLoader worker processes when streaming (0: one fewer than the CPUs, at most 8).
    workers: int = 0


@dataclass(frozen=True)
class MatrixSpec:
    """Either ``teachers`` × ``students``, or explicit ``pairs`` [teacher, student], or chains
    [teacher, assistant, …, student] for TAKD (Mirzadeh et al. 2020): with method ``takd``
    each assistant is distilled from the model before it and the student from the last;
    methods none / kd / dkd use the chain's two ends."""

    datasets: tuple[str, ...]
    teachers: tuple[str, ...] = ()
    students: tuple[str, ...] = ()
    pairs: tuple[tuple[str, ...], ...] = ()
    precisions: tuple[str, ...] = ("fp32",)
    methods: tuple[str, ...] = ("none", "kd")


@dataclass(frozen=True)
class SweepSpec:
    """One recipe field tried at each listed value: every cell runs once per value, its id
    ending in ``__FIELD=VALUE``. Only teacher.*, student.* and kd.* fields can be swept (data
    and split are shared by all cells)."""

    field: str
    values: tuple[Union[bool, int, float, str], ...]  # noqa: UP007 (the builder reads this type)


SWEEPABLE = ("teacher.", "student.", "kd.")


@dataclass(frozen=True)
class ReportedSpec:
    """A top-1 figure the reproduced system published, shown beside ours in the report.
    ``student`` empty: the teacher's own accuracy. ``dataset``: what it was measured on — a
    dataset of the matrix, or another name when ours differs (the report then says the
    figures are not comparable instead of subtracting them)."""

    top1: float  # percent, as published
    dataset: str
    source: str
    teacher: str = ""
    student: str = ""
    method: str = ""  # with a student: none / kd / dkd / takd
    split: Literal["test", "val"] = "test"


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    matrix: MatrixSpec
    seeds: tuple[int, ...] = (0,)
    description: str = ""
    split: SplitSpec = field(default_factory=SplitSpec)
    data: DataSpec = field(default_factory=DataSpec)
    teacher: RecipeSpec = field(default_factory=RecipeSpec)
    student: RecipeSpec = field(default_factory=RecipeSpec)
    kd: KDSpec = field(default_factory=KDSpec)
    metrics: tuple[str, ...] = ("top1", "f1_macro", "agreement")
    sweep: SweepSpec | None = None
    kd_by_pair: tuple[PairKDSpec, ...] = field(default=(), metadata=HASHED_WHEN_SET)
    # Start these models from weights on disk instead of a random init: model name → a file
    # holding a state dict (torch.save; a checkpoint with a "state_dict" or "model" entry
    # works too), path absolute or relative to the working directory. Tensors whose shape
    # does not fit (a 1000-class head on a 10-class task) are left at their init and listed
    # in the result. The file's sha256 is part of every affected cache key and result.
    pretrained: dict[str, str] = field(default_factory=dict)
    reported: tuple[ReportedSpec, ...] = ()
