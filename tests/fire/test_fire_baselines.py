"""Baselines on tiny networks with hand-computed expected values; ReDo on networks with known dead units."""

import pytest
import torch
from torch import nn

from fire import (
    InitSnapshot,
    head_reset_,
    inject_plasticity_,
    redo_,
    reset_,
    shrink_perturb_,
)


def filled(module: nn.Module, value: float) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(value)
    return module


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.LayerNorm(4), nn.Linear(4, 2))


def trained_mlp_and_snapshot():
    """Parameters 1.0 at init (snapshot) and 3.0 "after training"; buffer `steps` 0 at init, 7 after."""
    model = filled(mlp(), 1.0)
    model.register_buffer("steps", torch.tensor(0.0))
    snapshot = InitSnapshot.capture(model)
    filled(model, 3.0)
    model.steps.fill_(7.0)
    return model, snapshot


def test_reset_restores_every_parameter_and_optionally_buffers():
    model, snapshot = trained_mlp_and_snapshot()
    report = reset_(model, snapshot)
    assert all(torch.equal(p, torch.ones_like(p)) for p in model.parameters())
    assert model.steps == 7.0
    assert report.total_sfe == pytest.approx(4.0 * sum(p.numel() for p in model.parameters()))
    reset_(model, snapshot, buffers=True)
    assert model.steps == 0.0


def test_reset_with_include_touches_only_those_layers():
    model, snapshot = trained_mlp_and_snapshot()
    reset_(model, snapshot, include=[nn.Linear], exclude=["3"])
    assert torch.equal(model[0].weight, torch.ones(4, 3))
    assert torch.equal(model[3].weight, torch.full((2, 4), 3.0))
    assert torch.equal(model[2].weight, torch.full((4,), 3.0))


def test_shrink_perturb_interpolates_to_init():
    model, snapshot = trained_mlp_and_snapshot()
    report = shrink_perturb_(model, snapshot, shrink=0.8)
    for p in model.parameters():  # 0.2 * 3 + 0.8 * 1
        torch.testing.assert_close(p, torch.full_like(p, 1.4))
    assert model.steps == 7.0
    n = sum(p.numel() for p in model.parameters())
    assert report.total_sfe == pytest.approx(n * 1.6**2)


def test_shrink_perturb_fresh_noise_is_a_default_init_draw():
    model = filled(nn.Sequential(nn.Linear(100, 50), nn.LayerNorm(50)), 2.0)
    rng_state = torch.random.get_rng_state()
    shrink_perturb_(
        model,
        InitSnapshot.capture(model),
        shrink=0.5,
        noise="fresh",
        noise_scale=0.1,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    noise = (model[0].weight - 1.0) / 0.1  # (1 - 0.5) * 2 = 1.0 kept
    bound = 1 / 100**0.5  # kaiming-uniform(a=sqrt 5) on fan_in 100: U(-1/sqrt(100), 1/sqrt(100))
    assert noise.abs().max() <= bound + 1e-6
    assert noise.detach().std() == pytest.approx(bound / 3**0.5, rel=0.05)
    torch.testing.assert_close(model[1].weight, torch.full((50,), 1.0 + 0.1))  # LayerNorm init: ones
    torch.testing.assert_close(model[1].bias, torch.full((50,), 1.0))  # and zeros


def test_shrink_perturb_fresh_is_reproducible_from_the_generator():
    def run(seed):
        model = filled(nn.Linear(5, 5), 1.0)
        shrink_perturb_(model, None, noise="fresh", generator=torch.Generator().manual_seed(seed))
        return model.weight.detach().clone()

    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))


@pytest.mark.parametrize("kwargs,match", [({"noise": "gaussian"}, "noise"), ({"shrink": 1.5}, "shrink")])
def test_shrink_perturb_rejects_bad_arguments(kwargs, match):
    model, snapshot = trained_mlp_and_snapshot()
    with pytest.raises(ValueError, match=match):
        shrink_perturb_(model, snapshot, **kwargs)


def test_head_reset_resets_only_the_named_subtree():
    model = nn.Sequential()
    model.add_module("encoder", filled(nn.Linear(3, 4), 1.0))
    model.add_module("head", filled(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)), 1.0))
    snapshot = InitSnapshot.capture(model)
    filled(model, 3.0)
    report = head_reset_(model, snapshot, ["head"])
    assert torch.equal(model.encoder.weight, torch.full((4, 3), 3.0))
    assert all(torch.equal(p, torch.ones_like(p)) for p in model.head.parameters())
    assert {layer.name for layer in report.layers} == {
        "head.0.weight",
        "head.0.bias",
        "head.1.weight",
        "head.1.bias",
    }
    with pytest.raises(ValueError, match="no submodule named"):
        head_reset_(model, snapshot, ["decoder"])


def dead_unit_mlp():
    """Linear(3,6) ReLU Linear(6,5) ReLU Linear(5,2); hidden units 1, 4 of layer 0 and 2 of layer 2 are dead
    (zero incoming weights, negative bias) and every other unit is strongly active on positive inputs."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    with torch.no_grad():
        model[0].weight.abs_()
        model[0].bias.fill_(0.5)
        model[0].weight[[1, 4]] = 0.0
        model[0].bias[[1, 4]] = -1.0
        model[2].weight.abs_()
        model[2].bias.fill_(0.5)
        model[2].weight[2] = 0.0
        model[2].bias[2] = -1.0
    return model


def test_redo_resets_exactly_the_dormant_units_and_their_adam_moments():
    model = dead_unit_mlp()
    x = torch.rand(64, 3)
    optimizer = torch.optim.Adam(model.parameters())
    model(x).square().sum().backward()
    optimizer.step()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    moments = {id(p): {k: v.clone() for k, v in optimizer.state[p].items()} for p in model.parameters()}
    redo_(model, x, tau=0.1, optimizer=optimizer, generator=torch.Generator().manual_seed(0))

    dead0, alive0 = [1, 4], [0, 2, 3, 5]
    assert (model[0].weight[dead0] != 0).all() and (model[0].bias[dead0] != -1.0).all()  # fresh draw
    assert torch.equal(model[0].weight[alive0], before["0.weight"][alive0])
    alive2 = [0, 1, 3, 4]
    # Outgoing weights zeroed; the recycled unit 2 of layer 2 keeps its whole fresh incoming row.
    assert torch.equal(model[2].weight[alive2][:, dead0], torch.zeros(4, 2))
    assert torch.equal(model[2].weight[alive2][:, alive0], before["2.weight"][alive2][:, alive0])
    assert (model[2].weight[2, alive0] != before["2.weight"][2, alive0]).all()  # its own incoming reset
    assert torch.equal(model[4].weight[:, 2], torch.zeros(2))  # last hidden layer's outgoing zeroed
    assert torch.equal(model[4].weight[:, alive2], before["4.weight"][:, alive2])
    assert torch.equal(model[4].bias, before["4.bias"])  # output layer never reset

    for key in ("exp_avg", "exp_avg_sq"):
        w0 = optimizer.state[model[0].weight][key]
        assert torch.equal(w0[dead0], torch.zeros(2, 3))
        assert torch.equal(w0[alive0], moments[id(model[0].weight)][key][alive0])
        assert torch.equal(optimizer.state[model[0].bias][key][dead0], torch.zeros(2))
        w4 = optimizer.state[model[4].weight][key]
        assert torch.equal(w4[:, 2], torch.zeros(2))
        assert torch.equal(w4[:, alive2], moments[id(model[4].weight)][key][:, alive2])


def test_redo_fresh_weights_follow_the_default_init():
    model = dead_unit_mlp()
    redo_(model, torch.rand(32, 3), generator=torch.Generator().manual_seed(1))
    bound = 1 / 3**0.5
    assert model[0].weight[[1, 4]].abs().max() <= bound and model[0].bias[[1, 4]].abs().max() <= bound


def test_redo_report_counts_dormant_units():
    report = redo_(dead_unit_mlp(), torch.rand(32, 3))
    actions = {layer.name: layer.action for layer in report.layers}
    assert "2/6 dormant" in actions["0.weight"] and "1/5 dormant" in actions["2.weight"]
    assert "2 outgoing zeroed" in actions["2.weight"] and "1 outgoing zeroed" in actions["4.weight"]


def test_redo_conv_to_linear_flatten_repeats_the_mask_over_space():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16, 3))
    with torch.no_grad():
        model[0].weight.abs_()
        model[0].bias.fill_(0.1)
        model[0].weight[2] = 0.0
        model[0].bias[2] = -1.0
    before = model[3].weight.clone()
    redo_(model, torch.rand(8, 1, 6, 6))
    assert torch.equal(model[3].weight[:, 32:48], torch.zeros(3, 16))  # channel 2, all 4x4 positions
    assert torch.equal(model[3].weight[:, :32], before[:, :32]) and torch.equal(
        model[3].weight[:, 48:], before[:, 48:]
    )


@pytest.mark.parametrize(
    "model,match",
    [
        (nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.ReLU(), nn.Linear(4, 2)), "parametric module"),
        (nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), "no activation module"),
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU()), "at least one hidden"),
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(5, 2)), "takes 5 inputs"),
    ],
)
def test_redo_rejects_unsupported_structures(model, match):
    with pytest.raises(ValueError, match=match):
        redo_(model, torch.rand(4, 3))


class QNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x):
        return self.head(self.encoder(x))


def trainable_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_plasticity_injection_keeps_outputs_and_trainable_count():
    torch.manual_seed(2)
    model = QNet()
    snapshot = InitSnapshot.capture(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))  # "training"
    x = torch.randn(16, 4)
    y, count = model(x), trainable_count(model)
    trained_head = [p.clone() for p in model.head.parameters()]
    report = inject_plasticity_(model, snapshot, "head")
    torch.testing.assert_close(model(x), y, atol=1e-6, rtol=0)
    assert trainable_count(model) == count
    for p, name in zip(
        model.head.new.parameters(), ["0.weight", "0.bias", "2.weight", "2.bias"], strict=True
    ):
        assert torch.equal(p, snapshot[f"head.{name}"])
    # Only the new branch and the encoder learn.
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(x).square().sum().backward()
    optimizer.step()
    assert all(torch.equal(p, q) for p, q in zip(model.head.old.parameters(), trained_head, strict=True))
    assert all(torch.equal(p, snapshot[f"head.{n}"]) for n, p in model.head.new_frozen.named_parameters())
    assert not torch.equal(model.head.new[0].weight, snapshot["head.0.weight"])
    assert [layer.name for layer in report.layers] == [
        "head.0.weight",
        "head.0.bias",
        "head.2.weight",
        "head.2.bias",
    ]
    with pytest.raises(ValueError, match="no submodule named"):
        inject_plasticity_(model, snapshot, "tail")
