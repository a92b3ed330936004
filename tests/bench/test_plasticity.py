"""bench.plasticity: each intervention does what it says, and a tiny run writes well-formed tables."""

from __future__ import annotations

import re

import pytest
import torch

import fire
from bench import plasticity
from bench.plasticity import METHODS, QUICK, intervene, intervene_with_diagnostics, make_mlp


def trained_mlp(seed: int = 0):
    """A width-16 MLP, its theta_0 snapshot, inputs, and the same MLP after a few Adam steps."""
    torch.manual_seed(seed)
    model = make_mlp(16)
    snapshot = fire.InitSnapshot.capture(model)
    x, y = torch.randn(64, 64), torch.randint(10, (64,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model, snapshot, x


def weights(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_reset_restores_init_and_none_changes_nothing():
    model, snapshot, x = trained_mlp()
    trained = weights(model)
    assert intervene("none", model, snapshot, x, QUICK, torch.Generator()) is None
    assert all(torch.equal(p, trained[n]) for n, p in model.named_parameters())
    intervene("reset", model, snapshot, x, QUICK, torch.Generator())
    for name, p in model.named_parameters():
        assert torch.equal(p, snapshot[name]), name


def test_shrink_perturb_interpolates_to_init():
    model, snapshot, x = trained_mlp()
    trained = weights(model)
    intervene("shrink_perturb", model, snapshot, x, QUICK, torch.Generator())
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, 0.2 * trained[name] + 0.8 * snapshot[name])


def test_fire_orthogonalises_every_weight_and_keeps_biases():
    model, snapshot, x = trained_mlp()
    trained = weights(model)
    intervene("fire", model, snapshot, x, QUICK, torch.Generator())
    for layer in ("fc1", "fc2", "head"):
        torch.testing.assert_close(model.get_parameter(f"{layer}.weight"), fire.fire_linear(trained[f"{layer}.weight"]))
        assert torch.equal(model.get_parameter(f"{layer}.bias"), trained[f"{layer}.bias"])
    assert fire.dfi(model.fc2.weight) < 0.1 * fire.dfi(trained["fc2.weight"])  # square layer: near-isometry


def test_redo_recycles_a_dead_unit_without_changing_outputs():
    model, snapshot, x = trained_mlp()
    with torch.no_grad():
        model.fc1.weight[3] = 0.0
        model.fc1.bias[3] = -1.0  # unit 3 of fc1 outputs ReLU(-1) = 0 for every input: dormant
        before = model(x)
    intervene("redo", model, snapshot, x, QUICK, torch.Generator().manual_seed(0))
    assert model.fc1.weight[3].abs().sum() > 0  # fresh incoming weights
    with torch.no_grad():
        # Outgoing weights of recycled units are zeroed, so the network's function is unchanged.
        torch.testing.assert_close(model(x), before)


def test_unknown_method_is_rejected():
    model, snapshot, x = trained_mlp()
    with pytest.raises(ValueError, match="method='dash' is not one of"):
        intervene("dash", model, snapshot, x, QUICK, torch.Generator())


def test_diagnostics_normalised_sfe_is_one_for_reset_and_zero_for_none():
    for method, expected in (("reset", 1.0), ("none", 0.0)):
        model, snapshot, x = trained_mlp()
        rows = intervene_with_diagnostics(method, model, snapshot, x, QUICK, torch.Generator())
        assert set(rows) == {"fc1", "fc2", "head"}
        for layer, row in rows.items():
            assert row["normalized_sfe"] == pytest.approx(expected), (method, layer)
            assert 0.0 <= row["dormant_after"] <= 1.0 or layer == "head"


def test_quick_run_writes_png_and_tables(tmp_path):
    assert plasticity.main(["--quick", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "plasticity.png").stat().st_size > 0
    text = (tmp_path / "plasticity.md").read_text()
    summary = text.split("\n\n")[2].splitlines()  # title, settings, then the summary table
    assert summary[0].startswith("| method | (a) train acc, last task |")
    assert [row.split(" | ")[0].lstrip("| ") for row in summary[2:]] == list(METHODS)
    cell = re.compile(r"^\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]$")
    for row in summary[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")[1:]]
        assert len(cells) == 4 and all(cell.match(c) for c in cells), row
    # Per-layer diagnostics for every method in both experiments.
    assert text.count("| fire | fc2 |") == 2 and text.count("| redo | head |") == 2
