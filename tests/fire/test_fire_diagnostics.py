"""Diagnostics on constructed activations and weights with known answers; Report and InitSnapshot."""

import math

import pytest
import torch
from torch import nn

from fire import (
    InitSnapshot,
    LayerReport,
    Report,
    activation_metrics,
    dfi,
    dormant_ratio,
    effective_rank,
    feature_norm,
    feature_rank,
    fire_,
    normalized_sfe,
    pca_rank,
    sfe,
    srank,
    weight_metrics,
)


def activations_with_scores(scores: list[float], batch: int = 8) -> torch.Tensor:
    """(batch, N) with mean |h_j| = scores[j] exactly (alternating signs)."""
    signs = torch.tensor([(-1.0) ** i for i in range(batch)])[:, None]
    return signs * torch.tensor(scores)[None, :]


def test_dormant_ratio_on_known_scores():
    # mean score = 1.0, so normalised scores equal the raw ones.
    h = activations_with_scores([0.0, 0.02, 0.05, 0.09, 2.84, 3.0])
    assert dormant_ratio(h, 0.0) == pytest.approx(1 / 6)
    assert dormant_ratio(h, 0.025) == pytest.approx(2 / 6)
    assert dormant_ratio(h, 0.1) == pytest.approx(4 / 6)
    assert dormant_ratio(10 * h, 0.1) == pytest.approx(4 / 6)  # scale-free


def test_dormant_ratio_averages_conv_maps_over_space():
    h = torch.ones(4, 3, 5, 5)
    h[:, 1] = 0.0
    h[:, 2, 0, 0] = 25.0  # channel 2: mean |h| over space = (24 + 25) / 25, not dormant
    assert dormant_ratio(h, 0.0) == pytest.approx(1 / 3)


def features_with_singular_values(sigma: list[float], batch: int = 16, units: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(batch, len(sigma), generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(units, len(sigma), generator=g, dtype=torch.float64))
    return U @ torch.diag(torch.tensor(sigma, dtype=torch.float64)) @ V.mT


def test_rank_metrics_on_known_spectra():
    equal4 = features_with_singular_values([3.0, 3.0, 3.0, 3.0])
    assert effective_rank(equal4) == pytest.approx(4.0, rel=1e-5)
    assert srank(equal4) == 4 and pca_rank(equal4) == 4
    decaying = features_with_singular_values([100.0, 0.5, 0.4, 0.01])  # mass 100.91: top-1 holds 99.1 %
    assert srank(decaying, delta=0.01) == 1
    assert srank(decaying, delta=0.001) == 3
    assert pca_rank(decaying) == 1
    p = torch.tensor([100.0, 0.5, 0.4, 0.01]) / 100.91
    assert effective_rank(decaying) == pytest.approx(float(torch.exp(-(p * p.log()).sum())), rel=1e-5)
    # feature rank counts sigma / sqrt(16) > 0.01, i.e. sigma > 0.04.
    assert feature_rank(decaying) == 3
    assert effective_rank(torch.zeros(8, 4)) == 0.0 and srank(torch.zeros(8, 4)) == 0


def test_feature_norm_is_the_mean_per_sample_norm():
    h = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    assert feature_norm(h) == pytest.approx(3.0)


def test_dfi_is_zero_at_the_isometry_fire_targets():
    """DfI measures the distance to FIRE's target: sqrt(d_out/d_in) * polar(W) for a Linear, that gain / c
    per tap (and group) of a conv; the Gram matrix is taken on the small side."""
    Q, _ = torch.linalg.qr(torch.randn(10, 4, generator=torch.Generator().manual_seed(1)))
    assert dfi(math.sqrt(10 / 4) * Q) == pytest.approx(0.0, abs=1e-10)  # tall: W^T W = (10/4) I
    assert dfi(math.sqrt(4 / 10) * Q.mT) == pytest.approx(0.0, abs=1e-10)  # wide: W W^T = (4/10) I
    assert dfi(Q) == pytest.approx(4 * (1 - 10 / 4) ** 2)  # the unscaled isometry is off FIRE's target
    assert dfi(2 * torch.eye(3)) == pytest.approx(27.0)  # square: the paper's ||W^T W - I||^2 = 3 (4 - 1)^2
    # 9 taps of a (5, 2) block, each 0: Gram 2x2 on the small side, ||0 - g^2 I||^2 with g^2 = (5/2) / 9^2.
    assert dfi(torch.zeros(5, 2, 3, 3)) == pytest.approx(9 * 2 * (2.5 / 81) ** 2)
    assert dfi(torch.zeros(5, 2, 3, 3), conv_scale="rms") == pytest.approx(9 * 2 * (2.5 / 9) ** 2)


@pytest.mark.parametrize("shape", [(7, 3), (3, 7), (4, 8, 3), (8, 4, 3), (8, 6, 3, 2)], ids=str)
@pytest.mark.parametrize("conv_scale", ["official", "rms"])
def test_an_exact_fire_leaves_zero_dfi(shape, conv_scale):
    layer = nn.Linear(*shape) if len(shape) == 2 else nn.Conv2d(*shape[:3], groups=(shape[3:] or [1])[0])
    report = fire_(layer, polar="svd", conv_scale=conv_scale)
    (entry,) = report.layers
    assert entry.dfi_before > 1e-3 and entry.dfi_after == pytest.approx(0.0, abs=1e-9)
    groups = getattr(layer, "groups", 1)
    assert weight_metrics(layer)["dfi/"] == pytest.approx(dfi(layer.weight, groups))


def test_sfe_and_normalized_sfe():
    init, before = torch.zeros(2, 2), torch.ones(2, 2)
    assert sfe(before, init) == 4.0
    assert sfe([before, before], [init, init]) == 8.0
    assert normalized_sfe(before, init, init) == 1.0  # full reset
    assert normalized_sfe(before, 0.5 * before, init) == pytest.approx(0.25)
    assert math.isnan(normalized_sfe(init, before, init))


def dead_half_net() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 3), nn.Tanh())
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]))
        net[0].bias.copy_(torch.tensor([0.0, 0.0, -1.0, -1.0]))
    return net


def test_activation_metrics_keys_values_and_no_side_effects():
    net = dead_half_net().train()
    x = torch.rand(32, 2) + 0.1
    running_mean = net[2].running_mean.clone()
    metrics = activation_metrics(net, x)
    assert metrics["dormant_0.0/1"] == 0.5 and metrics["dormant_0.1/1"] == 0.5
    assert metrics["dormant_0.0"] == pytest.approx(2 / 7)  # 2 of 4 + 3 Tanh units dormant
    assert metrics["feature_rank/1"] == 2.0 and metrics["srank/1"] <= 2.0
    assert {"effective_rank/4", "pca_rank/4", "feature_norm/4", "dormant_0.025/4"} <= metrics.keys()
    assert torch.equal(net[2].running_mean, running_mean) and net.training and net[2].training
    only = activation_metrics(net, x, taus=(0.5,), layers=["0"])
    assert set(only) == {
        "dormant_0.5/0",
        "dormant_0.5",
        "effective_rank/0",
        "srank/0",
        "pca_rank/0",
        "feature_rank/0",
        "feature_norm/0",
    }
    with pytest.raises(ValueError, match="no submodule named"):
        activation_metrics(net, x, layers=["9"])


def test_activation_metrics_names_repeated_calls():
    relu = nn.ReLU()
    net = nn.Sequential(nn.Linear(2, 3), relu, nn.Linear(3, 3), relu)
    metrics = activation_metrics(net, torch.rand(4, 2))
    assert "dormant_0.0/1" in metrics and "dormant_0.0/1#1" in metrics


def test_weight_metrics():
    net = dead_half_net()
    metrics = weight_metrics(net)
    # (4, 2) with orthonormal columns: W^T W = I_2 against FIRE's target (4/2) I_2, so 2 (1 - 2)^2.
    assert metrics["dfi/0"] == pytest.approx(2.0)
    assert metrics["weight_norm/0"] == pytest.approx(math.sqrt(2))
    assert metrics["bias_norm/0"] == pytest.approx(math.sqrt(2))
    assert metrics["dfi"] == pytest.approx(metrics["dfi/0"] + metrics["dfi/3"])
    params = torch.cat([p.detach().flatten() for p in net.parameters()])
    assert metrics["param_norm"] == pytest.approx(float(params.norm()), rel=1e-6)


def report() -> Report:
    return Report(
        "fire",
        [
            LayerReport("encoder.0.weight", (8, 4), "fire", 2.0, 3.0, 1.0, 0.01),
            LayerReport("encoder.0.bias", (8,), "reset", 0.5, math.nan, math.nan, 0.0),
        ],
    )


def test_report_totals_scalars_and_table():
    r = report()
    assert r.total_sfe == 2.5 and r.seconds == 0.01
    assert r.scalars("reinit/critic") == {
        "reinit/critic/encoder.0.weight/sfe": 2.0,
        "reinit/critic/encoder.0.weight/dfi_before": 3.0,
        "reinit/critic/encoder.0.weight/dfi_after": 1.0,
        "reinit/critic/encoder.0.bias/sfe": 0.5,
        "reinit/critic/total_sfe": 2.5,
        "reinit/critic/dfi_before": 3.0,
        "reinit/critic/dfi_after": 1.0,
        "reinit/critic/seconds": 0.01,
    }
    lines = str(r).splitlines()
    assert lines[0] == "fire: 2 parameters changed (dfi: deviation from FIRE's target isometry, ~0 after FIRE)"
    assert len({line.index("sfe") for line in lines[1:2]}) == 1 and "8x4" in lines[2]
    assert len({len(line) for line in lines[1:4]}) == 1  # numeric columns right-aligned to one width


def test_report_merge_sums_sfe_per_parameter():
    second = Report("reset", [LayerReport("encoder.0.weight", (8, 4), "reset", 4.0, 1.0, 7.0, 0.02)])
    merged = Report.merge(report(), second)
    assert merged.method == "fire+reset" and len(merged.layers) == 3
    tags = merged.scalars("x")
    assert tags["x/encoder.0.weight/sfe"] == 6.0
    assert tags["x/encoder.0.weight/dfi_before"] == 3.0 and tags["x/encoder.0.weight/dfi_after"] == 7.0


def test_snapshot_is_a_detached_copy_with_ties_and_round_trip():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    model[1].weight = model[0].bias  # a tie, to check it survives
    snapshot = InitSnapshot.capture(model)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert not torch.equal(snapshot["0.weight"], model[0].weight)
    assert snapshot["1.weight"] is snapshot["0.bias"]
    assert not snapshot["0.weight"].requires_grad
    assert torch.equal(snapshot["1.running_var"], torch.ones(3))
    restored = InitSnapshot({}, {})
    restored.load_state_dict(snapshot.state_dict())
    assert torch.equal(restored["0.weight"], snapshot["0.weight"]) and "1.num_batches_tracked" in restored
    assert snapshot.to("cpu") is snapshot and snapshot["1.weight"] is snapshot["0.bias"]
    with pytest.raises(KeyError, match="2.weight"):
        snapshot["2.weight"]
    with pytest.raises(ValueError, match="buffers"):
        restored.load_state_dict({"parameters": {}})
