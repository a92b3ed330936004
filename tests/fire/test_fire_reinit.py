"""fire_: the official scaling rules, batched conv taps, selection, ties and what must stay untouched."""

import math

import pytest
import torch
from fire_reference import predicted_newton_schulz
from torch import nn

import fire
from fire import fire_, newton_schulz


def svd_polar64(W: torch.Tensor) -> torch.Tensor:
    U, _, Vh = torch.linalg.svd(W.double(), full_matrices=False)
    return U @ Vh


def seeded(module: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return module


@pytest.mark.parametrize("d_out,d_in", [(64, 32), (32, 64), (18, 512), (40, 40)])
def test_linear_default_is_scaled_newton_schulz(d_out, d_in):
    layer = seeded(nn.Linear(d_in, d_out), seed=d_out)
    W = layer.weight.detach().clone()
    fire_(layer)
    expected = math.sqrt(d_out / d_in) * predicted_newton_schulz(W, 10)
    torch.testing.assert_close(layer.weight.double(), expected, atol=2e-5, rtol=0)


@pytest.mark.parametrize("d_out,d_in", [(64, 32), (32, 64), (40, 40)])
def test_linear_svd_is_scaled_polar_factor(d_out, d_in):
    layer = seeded(nn.Linear(d_in, d_out), seed=1)
    W = layer.weight.detach().clone()
    fire_(layer, polar="svd")
    expected = math.sqrt(d_out / d_in) * svd_polar64(W)
    torch.testing.assert_close(layer.weight.double(), expected, atol=1e-5, rtol=0)


def per_tap_reference(W: torch.Tensor, divisor_power: float) -> torch.Tensor:
    """Official conv rule written as a loop over taps: SVD polar of W[:, :, tap] * sqrt(out/in) / K^p."""
    d_out, d_in, *kernel = W.shape
    taps = math.prod(kernel)
    out = torch.empty_like(W, dtype=torch.float64)
    for tap in torch.cartesian_prod(*[torch.arange(k) for k in kernel]).reshape(taps, -1):
        index = (slice(None), slice(None), *tap.tolist())
        out[index] = svd_polar64(W[index]) * math.sqrt(d_out / d_in) / taps**divisor_power
    return out


@pytest.mark.parametrize(
    "conv",
    [nn.Conv1d(6, 10, 5), nn.Conv2d(4, 32, 8, stride=4), nn.Conv2d(64, 16, (3, 2)), nn.Conv3d(3, 8, 2)],
)
@pytest.mark.parametrize("conv_scale,power", [("official", 1.0), ("rms", 0.5)])
def test_conv_svd_matches_official_per_tap_formula(conv, conv_scale, power):
    conv = seeded(conv, seed=7)
    W = conv.weight.detach().clone()
    fire_(conv, polar="svd", conv_scale=conv_scale)
    torch.testing.assert_close(conv.weight.double(), per_tap_reference(W, power), atol=1e-5, rtol=0)


def test_batched_taps_equal_a_per_tap_newton_schulz_loop():
    conv = seeded(nn.Conv2d(32, 64, 4), seed=8)
    W = conv.weight.detach().clone()
    fire_(conv)
    scale = math.sqrt(64 / 32) / 16
    for i in range(4):
        for j in range(4):
            expected = scale * newton_schulz(W[:, :, i, j])
            torch.testing.assert_close(conv.weight[:, :, i, j], expected, atol=1e-6, rtol=0)


def test_nature_cnn_first_conv_norm_after_official_fire():
    """Spec 1.4 table: conv1 (32<-4, 8x8) ends with ||W||_F = sqrt(64 taps * 4 cols * 32/4) / 64 = 0.71."""
    conv = nn.Conv2d(4, 32, 8, stride=4)
    fire_(conv, polar="svd")
    assert float(conv.weight.detach().norm()) == pytest.approx(math.sqrt(0.5), rel=1e-5)


def test_grouped_conv_orthogonalises_each_group_block():
    conv = seeded(nn.Conv2d(4, 4, 3, groups=4), seed=9)  # depthwise: every tap is a 1x1 matrix
    W = conv.weight.detach().clone()
    fire_(conv, polar="svd")
    torch.testing.assert_close(conv.weight, torch.sign(W) / 9)


def test_zero_and_rank_deficient_layers_stay_finite():
    zero, rank_one = nn.Linear(3, 5), nn.Linear(4, 6)
    with torch.no_grad():
        zero.weight.zero_()
        rank_one.weight.copy_(torch.outer(torch.arange(1.0, 7.0), torch.ones(4)))
    report = fire_(nn.Sequential(zero, rank_one))
    assert torch.equal(zero.weight, torch.zeros(5, 3))
    assert torch.isfinite(rank_one.weight).all()
    assert all(math.isfinite(layer.sfe) for layer in report.layers)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.emb = nn.Embedding(10, 8)
        self.fc = nn.Linear(8, 4)
        self.ln = nn.LayerNorm(4)
        self.register_buffer("counter", torch.arange(3.0))

    def forward(self, x):
        return self.ln(self.fc(self.bn(self.conv(x)).mean((2, 3))))


def test_only_linear_and_conv_weights_change():
    model = seeded(Tiny(), seed=10)
    model(torch.randn(4, 3, 6, 6))  # populate BatchNorm running statistics
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fire_(model)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"conv.weight", "fc.weight"}


def test_in_place_keeps_parameter_identity_and_optimiser_references():
    model = seeded(Tiny(), seed=11)
    optimiser = torch.optim.Adam(model.parameters())
    ids = [id(p) for p in model.parameters()]
    fire_(model)
    assert ids == [id(p) for p in model.parameters()]
    assert [id(p) for p in optimiser.param_groups[0]["params"]] == ids


def test_tied_parameter_is_transformed_once():
    """lm_head shares its weight with the embedding (GPT); a second transform would rescale it again."""
    emb, head = nn.Embedding(50, 8), nn.Linear(8, 50, bias=False)
    head.weight = emb.weight
    twin = nn.Linear(8, 50, bias=False)
    twin.weight = emb.weight  # a second module on the same Parameter
    model = nn.ModuleDict({"wte": emb, "lm_head": head, "twin": twin})
    W = emb.weight.detach().clone()
    report = fire_(model, polar="svd")
    torch.testing.assert_close(emb.weight.double(), math.sqrt(50 / 8) * svd_polar64(W), atol=1e-5, rtol=0)
    assert [layer.name for layer in report.layers] == ["lm_head.weight"]
    assert "twin.weight" in report.layers[0].action


class Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.to_q, self.to_k, self.to_v = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.proj = nn.Linear(d, d)


MLP_WEIGHTS = {"mlp.0.weight", "mlp.2.weight"}


def gpt_block():
    return nn.ModuleDict(
        {
            "ln1": nn.LayerNorm(16),
            "attn": Attention(16),
            "mlp": nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 16)),
        }
    )


@pytest.mark.parametrize(
    "include,exclude,expected",
    [
        (["*.to_q", "*.to_k"], None, {"attn.to_q.weight", "attn.to_k.weight"}),
        ("attn.to_v", None, {"attn.to_v.weight"}),
        ([nn.Linear], ["mlp.*", "attn.proj"], {"attn.to_q.weight", "attn.to_k.weight", "attn.to_v.weight"}),
        (lambda name, m: name.startswith("mlp"), None, {"mlp.0.weight", "mlp.2.weight"}),
        (None, lambda name, m: "attn" in name, {"mlp.0.weight", "mlp.2.weight"}),
        (["*"], None, {f"attn.{n}.weight" for n in ("to_q", "to_k", "to_v", "proj")} | MLP_WEIGHTS),
    ],
)
def test_include_and_exclude_select_layers(include, exclude, expected):
    block = gpt_block()
    before = {k: v.clone() for k, v in block.state_dict().items()}
    report = fire_(block, include=include, exclude=exclude)
    changed = {k for k, v in block.state_dict().items() if not torch.equal(before[k], v)}
    assert changed == expected == {layer.name for layer in report.layers}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"polar": "qr"}, "polar"),
        ({"conv_scale": "fan_in"}, "conv_scale"),
        ({"iterations": 0}, "iterations"),
        ({"include": [3]}, "include"),
        ({"exclude": [nn.Linear, 1.5]}, "exclude"),
        ({"include": [nn.LayerNorm]}, "selected no layer"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fire_(gpt_block(), **kwargs)


def test_report_fields_and_procrustes_sfe():
    layer = seeded(nn.Linear(24, 24), seed=12)
    W = layer.weight.detach().double().clone()
    report = fire_(layer, polar="svd")
    (entry,) = report.layers
    sigma = torch.linalg.svdvals(W)
    assert entry.name == "weight" and entry.shape == (24, 24)
    assert entry.sfe == pytest.approx(float(((sigma - 1) ** 2).sum()), rel=1e-5)
    assert entry.dfi_before == pytest.approx(fire.dfi(W), rel=1e-5)
    assert entry.dfi_after < 1e-8
    assert report.total_sfe == entry.sfe and report.seconds == entry.seconds > 0


def test_square_layer_fire_sfe_is_within_tolerance_of_the_procrustes_optimum():
    layer = nn.Linear(32, 32)
    with torch.no_grad():
        noise = torch.randn(32, 32, generator=torch.Generator().manual_seed(13))
        layer.weight.copy_(torch.eye(32) + 0.1 * noise)
    W = layer.weight.detach().double().clone()
    optimum = fire.sfe(W, svd_polar64(W))
    assert fire_(layer).total_sfe == pytest.approx(optimum, rel=1e-3)


def test_bfloat16_weights_are_computed_in_float32_and_stored_back():
    layer = seeded(nn.Linear(16, 32), seed=14).to(torch.bfloat16)
    fire_(layer, polar="svd")
    assert layer.weight.dtype == torch.bfloat16
    sigma = torch.linalg.svdvals(layer.weight.float()) / math.sqrt(2)
    assert torch.allclose(sigma, torch.ones(16), atol=2e-2)


def test_works_on_parameters_that_require_grad_after_a_backward_pass():
    model = seeded(Tiny(), seed=15)
    model(torch.randn(2, 3, 6, 6)).sum().backward()
    fire_(model)
    model(torch.randn(2, 3, 6, 6)).sum().backward()  # still a valid leaf graph


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    cpu = seeded(Tiny(), seed=16)
    gpu = seeded(Tiny(), seed=16).cuda()
    fire_(cpu)
    report = fire_(gpu)
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters(), strict=True):
        torch.testing.assert_close(q.cpu(), p, atol=1e-5, rtol=0, msg=name)
    assert report.seconds > 0
