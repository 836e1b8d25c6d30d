"""Single-image inference latency: one image, eval mode, warm-up then timed passes."""

from __future__ import annotations

import torch
import torch.nn as nn

from kdbench import precision as prec
from kdbench.latency import single_image_latency
from kdbench.train import DeviceData


class Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3 * 8 * 8, 4)
        self.calls: list[tuple[int, bool]] = []

    def forward(self, x):
        self.calls.append((x.shape[0], self.training))
        return self.lin(x.flatten(1))


def test_latency_times_single_images_in_eval_mode_and_restores_the_mode():
    data = DeviceData(torch.randint(0, 255, (10, 3, 8, 8), dtype=torch.uint8), torch.zeros(10, dtype=torch.int64),
                      torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1))
    model = Counting().train()
    cpu = torch.device("cpu")
    lat = single_image_latency(model, data, prec.get_policy("fp32", cpu), cpu, warmup=2, runs=7)
    assert model.calls == [(1, False)] * 9  # 2 warm-up + 7 timed, batch 1, eval mode
    assert model.training  # left as it was
    assert 0 < lat["batch1_median_ms"] <= lat["batch1_p90_ms"] and lat["runs"] == 7 and lat["warmup"] == 2
    assert lat["batch1_spread"] >= 0  # the passes' own noise, which kdbench diff judges a latency change against


def test_relative_spread_is_a_robust_relative_standard_deviation():
    from kdbench.spread import relative_spread

    assert relative_spread([1.0, 1.0]) is None  # too few to say
    assert relative_spread([2.0, 2.0, 2.0]) == 0.0
    # One pass cut by the scheduler (100×) does not move it: median 10, deviations 0 1 1 90 → MAD 1.
    assert abs(relative_spread([10.0, 9.0, 11.0, 1000.0, 10.0]) - 1.4826 * 1 / 10) < 1e-12
    assert relative_spread([0.0, 0.0, 0.0]) is None


def test_the_test_split_is_timed_over_several_passes():
    from kdbench.latency import TEST_PASSES, throughput, timed_passes

    calls = []
    first, seconds = timed_passes(lambda: calls.append(len(calls)) or len(calls), torch.device("cpu"))
    assert first == 1 and calls == list(range(TEST_PASSES)), "the first pass's result, every pass run"
    assert len(seconds) == TEST_PASSES >= 3 and all(t >= 0 for t in seconds)
    # Images/s at the median pass: a slow first pass (warm-up) does not decide it; its spread is robust too.
    speed = throughput(1000, [5.0, 1.0, 1.25])
    assert speed == {"images_per_s": 800.0, "spread": round(1.4826 * 0.25 / 1.25, 4), "passes": 3}
    assert throughput(1000, [2.0])["spread"] is None
