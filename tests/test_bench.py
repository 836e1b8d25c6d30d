"""Throughput benchmarks (pytest-benchmark, marker ``benchmark``).

On CPU in CI they run once as plain tests (``--benchmark-disable``, the default in
pyproject) so they cannot rot; ``nox -s bench`` / ``--benchmark-enable`` measures. GPU timings
synchronise inside the timed function, and CUDA-event GPU time is recorded beside them.
Each KD-loss figure is also stated against its memory-traffic floor (12·B·C bytes for fp32:
read student and teacher logits, write the gradient)."""

from __future__ import annotations

import pytest
import torch

from kdbench import precision as prec
from kdbench.losses import kd_loss
from kdbench.models import MODELS, build_model
from kdbench.plain_step import plain_step_on_random_batch

from .conftest import REPO

pytestmark = pytest.mark.benchmark

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
ON_GPU = DEVICE.type == "cuda"
# Shapes: batch × classes. The large ones only where a GPU is.
KD_SHAPES = [(128, 10), (1024, 100), (1024, 1000)] if ON_GPU else [(128, 10), (256, 100)]


def sync() -> None:
    if ON_GPU:
        torch.cuda.synchronize()


def cuda_event_ms(fn, iters: int = 50) -> float | None:
    """Mean GPU time per call from CUDA events, after the benchmark's own warm-up."""
    if not ON_GPU:
        return None
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def bench_synced(benchmark, fn, warmup: int, gpu_iters: int) -> float | None:
    """Warm up, let pytest-benchmark time ``fn`` with a synchronisation inside the timed call,
    then return the CUDA-event GPU ms per call (None on CPU)."""
    for _ in range(warmup):
        fn()
    sync()

    def timed():
        fn()
        sync()

    benchmark(timed)
    return cuda_event_ms(fn, iters=gpu_iters)


@pytest.fixture(scope="module")
def bandwidth_bytes_per_s() -> float | None:
    """Measured device-to-device copy bandwidth (bytes read + written per second)."""
    if not ON_GPU:
        return None
    x = torch.empty(256 * 2**20, dtype=torch.uint8, device=DEVICE)
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    ms = cuda_event_ms(lambda: y.copy_(x), iters=20)
    return 2 * x.numel() / (ms / 1e3)


def kd_step(s, t, y):
    loss, _ = kd_loss(s, t, y, temperature=4.0, ce_weight=0.1, kd_weight=0.9)
    loss.backward()
    s.grad = None


def kd_grad(s, t, y):
    """The same work as kd_step, returning the gradient instead of storing it."""
    loss, _ = kd_loss(s, t, y, temperature=4.0, ce_weight=0.1, kd_weight=0.9)
    return torch.autograd.grad(loss, s)[0]


def graphed_kd_step(s, t, y):
    """kd_grad captured once in a CUDA graph: each call replays it, one launch for the whole
    forward and backward (on the H100 and H200 the eager calls were bound by the host, ~0.5 ms
    against a memory floor of at most 4 µs). Checked against eager before it is timed."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
        for _ in range(3):
            kd_grad(s, t, y)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=side):  # the warm-up's stream: its library handles exist before capture
        out = kd_grad(s, t, y)
    graph.replay()
    torch.testing.assert_close(out, kd_grad(s, t, y))  # the dtype's default tolerance: reductions may use atomics
    return lambda *_: graph.replay()


@pytest.mark.parametrize("impl", ["eager", "compiled", "graphed"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("B, C", KD_SHAPES)
def test_kd_loss_fwd_bwd(benchmark, B, C, dtype, impl, bandwidth_bytes_per_s):
    if impl == "compiled" and not ON_GPU:
        pytest.skip("compiled KD loss is benchmarked on CUDA only: CPU inductor compiles take ~20 s a shape on CI's 2 cores")
    if impl == "graphed" and not ON_GPU:
        pytest.skip("CUDA graphs exist on CUDA only")
    g = torch.Generator(device=DEVICE).manual_seed(0)
    dt = torch.float32 if dtype == "fp32" else torch.bfloat16
    s = torch.randn(B, C, device=DEVICE, generator=g).to(dt).requires_grad_(True)
    t = torch.randn(B, C, device=DEVICE, generator=g).to(dt)
    y = torch.randint(0, C, (B,), device=DEVICE, generator=g)
    if impl == "eager":
        fn = kd_step
    elif impl == "compiled":
        fn = torch.compile(kd_step)
    else:
        fn = graphed_kd_step(s, t, y)
    for _ in range(3):  # warm-up (and compilation)
        fn(s, t, y)
    sync()

    def timed():
        fn(s, t, y)
        sync()

    benchmark(timed)
    gpu_ms = cuda_event_ms(lambda: fn(s, t, y))
    benchmark.extra_info.update(batch=B, classes=C, dtype=dtype, impl=impl, device=str(DEVICE))
    if gpu_ms is not None:
        floor_bytes = (4 if dtype == "fp32" else 2) * 3 * B * C
        floor_us = floor_bytes / bandwidth_bytes_per_s * 1e6
        benchmark.extra_info.update(gpu_us=round(gpu_ms * 1e3, 2), floor_us=round(floor_us, 2), times_floor=round(gpu_ms * 1e3 / floor_us, 1),
                                    bandwidth_tb_s=round(bandwidth_bytes_per_s / 1e12, 2))


FWD_PRECISIONS = ["fp32", "tf32", "bf16", "fp16"] if ON_GPU else ["fp32"]
FWD_BATCH = 1024 if ON_GPU else 32


def forward_bench(benchmark, name: str, precision: str, channels: int, size: int, classes: int, batch: int, **info) -> None:
    """Inference of one model on one batch of random images, timed with synchronisation, GPU
    time from CUDA events beside it; ``info`` goes into the benchmark's extra_info too."""
    policy = prec.get_policy(precision, DEVICE)
    prec.apply_global_flags(policy)
    torch.manual_seed(0)
    model = build_model(name, channels, classes, size).to(DEVICE).eval()
    x = torch.randn(batch, channels, size, size, device=DEVICE)

    def fwd():
        with torch.no_grad(), prec.autocast(policy, DEVICE):
            model(x)

    for _ in range(3 if ON_GPU else 1):  # cuDNN's algorithm choice and the caching allocator settle on a GPU
        fwd()
    sync()

    def timed():
        fwd()
        sync()

    benchmark(timed)
    gpu_ms = cuda_event_ms(fwd, iters=20)
    benchmark.extra_info.update(model=name, precision=precision, batch=batch, device=str(DEVICE), **info)
    if gpu_ms is not None:
        benchmark.extra_info.update(gpu_ms=round(gpu_ms, 3), images_per_s=round(batch / (gpu_ms / 1e3)))


def train_step_bench(benchmark, name: str, precision: str, channels: int, size: int, classes: int, batch: int, **info) -> None:
    """One optimisation step (forward, cross-entropy, backward, SGD) with deterministic kernels
    on, as in a real run; ``info`` goes into the benchmark's extra_info too."""
    step = plain_step_on_random_batch(name, precision, DEVICE, batch, channels, classes, size)
    try:
        gpu_ms = bench_synced(benchmark, step, warmup=1, gpu_iters=10)
    finally:
        torch.use_deterministic_algorithms(False)
    benchmark.extra_info.update(model=name, precision=precision, batch=batch, device=str(DEVICE), **info)
    if gpu_ms is not None:
        benchmark.extra_info.update(gpu_ms=round(gpu_ms, 3), images_per_s=round(batch / (gpu_ms / 1e3)))


TRAIN_BATCH = 256 if ON_GPU else 8


@pytest.mark.parametrize("precision", FWD_PRECISIONS)
@pytest.mark.parametrize("name", MODELS.names())
def test_forward_throughput(benchmark, name, precision):
    """Inference of every registered model at 3×32×32 and 10 classes."""
    forward_bench(benchmark, name, precision, 3, 32, 10, FWD_BATCH)


@pytest.mark.parametrize("precision", FWD_PRECISIONS)
@pytest.mark.parametrize("name", MODELS.names())
def test_train_step_throughput(benchmark, name, precision):
    """One training step of every registered model at 3×32×32 and 10 classes."""
    train_step_bench(benchmark, name, precision, 3, 32, 10, TRAIN_BATCH)


# The suites' models that the registry's list above leaves out, or holds only at an input that
# is not their suite's: timm's, by name, and S5's pair at 224×224. Each at the input of a suite
# that uses it (model, channels, image size, classes); test_every_suite_model_is_benchmarked
# keeps the list complete.
S1_STUDENTS = ("simplenet", "student_light", "student_separable", "student_dwskip", "student_resnet")
SUITE_INPUTS = [
    ("timm/efficientnet_b4", 3, 32, 10),  # s1-cifar10's teacher
    ("timm/resnet50", 3, 32, 10),  # s3-cifar10's chain
    ("timm/resnet34", 3, 32, 10),
    ("timm/resnet18", 3, 32, 10),
    ("timm/resnet18", 1, 28, 10),  # s4-fmnist's teacher, on Fashion-MNIST
    ("timm/deit_small_distilled_patch16_224", 3, 224, 2),  # s5-imagenette's pair
    ("tv_resnet50_dropout", 3, 224, 2),
    *((m, 1, 28, 10) for m in ("rescnn_b4", "rescnn_b6", "rescnn_b8", "rescnn_b10")),  # s4-fmnist's students
    *((m, 3, 64, 10) for m in ("timm/efficientnet_b4", *S1_STUDENTS)),  # s1-eurosat
    *((m, 3, 150, 6) for m in ("timm/resnet18", "rescnn_b4", "rescnn_b6", "rescnn_b8", "rescnn_b10")),  # s4-intel
    *((m, 3, 28, 9) for m in ("timm/resnet50", "timm/resnet34", "timm/resnet18", "vit_base", "vit_small", "vit_tiny")),  # s3-pathmnist
]


def suite_batch(base: int, size: int) -> int:
    """The batch for a suite model on a GPU: the 32×32 one, a quarter of it at 224×224 (memory).
    On the CPU, 2: CI runs each once, to keep it from rotting, and these models are large."""
    if not ON_GPU:
        return 2
    return base if size <= 64 else base // 4


SUITE_IDS = [f"{m}-{c}x{s}" for m, c, s, _ in SUITE_INPUTS]


@pytest.mark.parametrize("precision", FWD_PRECISIONS)
@pytest.mark.parametrize("name, channels, size, classes", SUITE_INPUTS, ids=SUITE_IDS)
def test_suite_model_forward(benchmark, name, channels, size, classes, precision):
    forward_bench(benchmark, name, precision, channels, size, classes, suite_batch(FWD_BATCH, size), input=f"{channels}×{size}×{size}")


@pytest.mark.parametrize("precision", FWD_PRECISIONS)
@pytest.mark.parametrize("name, channels, size, classes", SUITE_INPUTS, ids=SUITE_IDS)
def test_suite_model_train_step(benchmark, name, channels, size, classes, precision):
    train_step_bench(benchmark, name, precision, channels, size, classes, suite_batch(TRAIN_BATCH, size), input=f"{channels}×{size}×{size}")


def suite_model_inputs() -> set[tuple[str, int, int]]:
    """(model, channels, image size) of every teacher, assistant and student a suite in suites/
    trains, from each data set's declared shape (no data needed) and the suite's data.resize.
    The shipped Fashion-MNIST subset (fmnist-smoke) is left out: its cells check that a suite
    runs end to end, on a few batches an epoch, and no one reads a throughput from them; every
    registered model is benchmarked at 3×32×32, within a fifth of its 1×28×28 pixels."""
    from kdbench.data import dataset_source
    from kdbench.suite import load_suite

    inputs = set()
    for path in sorted((REPO / "suites").glob("*.yaml")):
        suite = load_suite(path)
        for cell in suite.cells():
            if cell.dataset == "fmnist-smoke":
                continue
            shape = dataset_source(cell.dataset).shape
            size = suite.spec_of(cell).data.resize or shape.size
            inputs |= {(m, shape.channels, size) for m in (cell.teacher, cell.student, *cell.assistants)}
    return inputs


def test_every_suite_model_is_benchmarked_at_its_suite_input():
    """Every teacher, assistant and student a suite trains has a throughput benchmark at the
    input it trains on: at 3×32×32 for the registry's models, else in SUITE_INPUTS. The class
    count is not compared: it changes only the last layer's width."""
    trained = suite_model_inputs()
    listed = {(m, c, s) for m, c, s, _ in SUITE_INPUTS}
    missing = trained - listed - {(m, 3, 32) for m in MODELS.names()}
    assert not missing, f"suite models with no throughput benchmark at their input: add them to SUITE_INPUTS: {sorted(missing)}"
    assert len(listed) == len(SUITE_INPUTS), "SUITE_INPUTS lists an input twice"
    assert listed <= trained, f"SUITE_INPUTS lists inputs no suite trains on (a suite changed?): {sorted(listed - trained)}"


def kd_step_setup(precision: str, deterministic: bool, batch: int):
    """The KD-step benchmarks' cell: precision flags and deterministic kernels set (the caller
    turns determinism off again), a resnet18_cifar teacher (eval) and a cnn_small student with
    SGD, one batch of data already on the device."""
    policy = prec.get_policy(precision, DEVICE)
    prec.apply_global_flags(policy)
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = False
    torch.manual_seed(0)
    teacher = build_model("resnet18_cifar", 3, 10, 32).to(DEVICE).eval()
    student = build_model("cnn_small", 3, 10, 32).to(DEVICE)
    opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32, device=DEVICE)
    y = torch.randint(0, 10, (batch,), device=DEVICE)
    return policy, teacher, student, opt, x, y


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("precision", FWD_PRECISIONS)
def test_kd_train_step(benchmark, precision, deterministic):
    """One distillation step: resnet18_cifar teacher (eval, no_grad) → cnn_small student, data
    already on the device; deterministic kernels on and off, to state their cost."""
    if not ON_GPU and not deterministic:
        pytest.skip("the deterministic/non-deterministic comparison is about CUDA kernels")
    batch = 256 if ON_GPU else 16
    policy, teacher, student, opt, x, y = kd_step_setup(precision, deterministic, batch)
    scaler = prec.grad_scaler(policy, DEVICE)

    def step():
        with prec.autocast(policy, DEVICE):
            out = student(x)
            with torch.no_grad():
                t_out = teacher(x)
        loss, _ = kd_loss(out, t_out, y, temperature=4.0, ce_weight=0.1, kd_weight=0.9)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    try:
        gpu_ms = bench_synced(benchmark, step, warmup=3, gpu_iters=20)
    finally:
        torch.use_deterministic_algorithms(False)
    benchmark.extra_info.update(precision=precision, deterministic=deterministic, batch=batch)
    if gpu_ms is not None:
        benchmark.extra_info.update(gpu_ms=round(gpu_ms, 3), images_per_s=round(batch / (gpu_ms / 1e3)))


def graphed_train_step(step, model: torch.nn.Module, opt: torch.optim.Optimizer):
    """``step`` (forward, loss, backward, optimiser step; grads set to None before it) captured
    in a CUDA graph after three eager warm-up steps (which create the momentum buffers). Before
    it is timed, two replays are checked against two eager steps from the same weights and
    momentum. Returns the replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    tensors = [*model.parameters(), *model.buffers(), *(v for st in opt.state.values() for v in st.values() if torch.is_tensor(v))]
    start = [t.detach().clone() for t in tensors]

    def restore():  # in place: the graph keeps reading and writing these very tensors
        with torch.no_grad():
            for t, v in zip(tensors, start, strict=True):
                t.copy_(v)

    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph, stream=side):  # the warm-up's stream: its library handles exist before capture
        step()
    for _ in range(2):
        graph.replay()
    replayed = [t.detach().clone() for t in tensors]
    restore()
    for _ in range(2):
        step()
    for a, b in zip(replayed, tensors, strict=True):
        torch.testing.assert_close(a, b.detach())
    restore()  # the timed replays start where the eager steps did
    return graph.replay


@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16"])
def test_kd_train_step_graphed(benchmark, precision):
    """The KD step of test_kd_train_step (deterministic kernels on) captured in one CUDA graph:
    how much of the step's time is the host launching its kernels (fp16 is left out: its
    GradScaler checks for inf on the host)."""
    if not ON_GPU:
        pytest.skip("CUDA graphs exist on CUDA only")
    batch = 256
    policy, teacher, student, opt, x, y = kd_step_setup(precision, True, batch)
    dtype = policy.autocast_dtype

    def step():
        # cache_enabled=False: autocast's cast-weight cache must not outlive a graph capture
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None, cache_enabled=False):
            out = student(x)
            with torch.no_grad():
                t_out = teacher(x)
        loss, _ = kd_loss(out, t_out, y, temperature=4.0, ce_weight=0.1, kd_weight=0.9)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    try:
        replay = graphed_train_step(step, student, opt)
        gpu_ms = bench_synced(benchmark, replay, warmup=1, gpu_iters=20)
    finally:
        torch.use_deterministic_algorithms(False)
    benchmark.extra_info.update(precision=precision, deterministic=True, batch=batch, graphed=True)
    benchmark.extra_info.update(gpu_ms=round(gpu_ms, 3), images_per_s=round(batch / (gpu_ms / 1e3)))
