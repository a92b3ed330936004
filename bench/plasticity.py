"""CPU plasticity benchmark: does FIRE restore a trained network's ability to learn? `python -m bench.plasticity`.

Two small experiments on an MLP (64 -> width -> width -> 10, ReLU), comparing no intervention with FIRE,
full reset, shrink & perturb and ReDo over several seeds:

(a) continual random-label memorisation (Lyle et al. 2023 style): a fixed set of inputs gets a new
    random labelling for every task; the same network trains a fixed number of steps per task and the
    metric is the training accuracy it reaches. The intervention is applied at every task boundary.
(b) warm-start generalisation (Ash & Adams 2020): train on a fixed 10 % of the training set for many
    epochs, intervene once, then train on 100 %; the metric is test accuracy.

Data: scikit-learn's bundled 8x8 digits (1797 images, 64 features; no download). At every intervention
(and for every method, "none" included) Adam is rebuilt, as the FIRE authors' vision code does at each
new chunk, so only the weights differ between methods. Shrink & perturb is the FIRE code's variant,
theta <- 0.2 theta + 0.8 theta_0 (spec fire.md section 3). Writes bench/results/plasticity.{png,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor, nn

import fire
from tools.markdown import markdown_table
from tools.stats import bootstrap_mean_ci

METHODS = ("none", "fire", "reset", "shrink_perturb", "redo")
HIDDEN = ("fc1", "fc2")  # Linear layers whose ReLU outputs are scored for dormancy
RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Config:
    seeds: int = 5
    """Independent repetitions per method (network init, labels, data subset and order)."""
    width: int = 128
    """Hidden units per layer."""
    learning_rate: float = 1e-3
    """Adam step size, both experiments."""
    batch_size: int = 128
    """Examples per gradient step, both experiments."""
    memorise_samples: int = 512
    """(a) Fixed inputs whose labels are redrawn every task."""
    memorise_tasks: int = 15
    """(a) Number of labellings; interventions happen before tasks 2..memorise_tasks."""
    memorise_steps: int = 400
    """(a) Gradient steps per task (the fixed budget)."""
    warm_fraction: float = 0.1
    """(b) Fraction of the training set seen in the warm-start phase."""
    warm_epochs: int = 1000
    """(b) Epochs over that fraction before the intervention."""
    full_epochs: int = 20
    """(b) Epochs over the full training set after it."""
    shrink: float = 0.8
    """Shrink & perturb: theta <- (1 - shrink) theta + shrink theta_0."""
    redo_tau: float = 0.1
    """ReDo: recycle units whose normalised mean |activation| is <= tau."""


QUICK = Config(seeds=2, width=32, batch_size=32, memorise_samples=64, memorise_tasks=3, memorise_steps=20,
               warm_epochs=3, full_epochs=2)


def make_mlp(width: int, inputs: int = 64, classes: int = 10) -> nn.Sequential:
    return nn.Sequential(OrderedDict(fc1=nn.Linear(inputs, width), relu1=nn.ReLU(),
                                     fc2=nn.Linear(width, width), relu2=nn.ReLU(), head=nn.Linear(width, classes)))


def digits() -> tuple[Tensor, Tensor]:
    """All 1797 digits: standardised features (1797, 64) float32 and labels (1797,) int64."""
    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)


def intervene(method: str, model: nn.Sequential, snapshot: fire.InitSnapshot, inputs: Tensor,
              config: Config, generator: torch.Generator) -> fire.Report | None:
    """Apply one intervention in place; `inputs` (batch, 64) feed ReDo's dormancy scores."""
    if method == "none":
        return None
    if method == "fire":
        return fire.fire_(model)
    if method == "reset":
        return fire.reset_(model, snapshot)
    if method == "shrink_perturb":
        return fire.shrink_perturb_(model, snapshot, shrink=config.shrink)
    if method == "redo":
        return fire.redo_(model, inputs, tau=config.redo_tau, generator=generator)
    raise ValueError(f"method={method!r} is not one of {METHODS}")


def layer_diagnostics(model: nn.Sequential, inputs: Tensor) -> dict[str, dict[str, float]]:
    """{layer: {"dfi": ..., "dormant": ...}}: DfI of each Linear weight and the tau = 0.1 dormant
    fraction of each hidden layer's ReLU output on inputs (NaN for the output layer)."""
    weights = fire.weight_metrics(model)
    activations = fire.activation_metrics(model, inputs, taus=(0.1,))
    return {
        layer: {"dfi": weights[f"dfi/{layer}"],
                "dormant": activations.get(f"dormant_0.1/relu{layer[-1]}", float("nan")) if layer in HIDDEN
                else float("nan")}
        for layer in ("fc1", "fc2", "head")
    }


def intervene_with_diagnostics(method: str, model: nn.Sequential, snapshot: fire.InitSnapshot, inputs: Tensor,
                               config: Config, generator: torch.Generator) -> dict[str, dict[str, float]]:
    """intervene(), plus per layer: DfI and dormant fraction before/after, SFE and normalised SFE
    (SFE(before, after) / SFE(before, theta_0): 1 for a full reset, 0 for no change)."""
    before_weights = {layer: model.get_submodule(layer).weight.detach().clone() for layer in ("fc1", "fc2", "head")}
    before = layer_diagnostics(model, inputs)
    intervene(method, model, snapshot, inputs, config, generator)
    after = layer_diagnostics(model, inputs)
    rows = {}
    for layer, old in before_weights.items():
        new, init = model.get_submodule(layer).weight, snapshot[f"{layer}.weight"]
        rows[layer] = {"dfi_before": before[layer]["dfi"], "dfi_after": after[layer]["dfi"],
                       "dormant_before": before[layer]["dormant"], "dormant_after": after[layer]["dormant"],
                       "sfe": fire.sfe(old, new), "normalized_sfe": fire.normalized_sfe(old, new, init)}
    return rows


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, steps: int,
                batch_size: int, generator: torch.Generator) -> None:
    """`steps` Adam steps of cross-entropy on minibatches drawn without replacement, epoch by epoch."""
    model.train()
    done = 0
    while done < steps:
        for batch in torch.randperm(len(x), generator=generator).split(batch_size):
            if done == steps:
                break
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def memorisation_run(method: str, seed: int, config: Config, x_all: Tensor) -> tuple[list[float], dict]:
    """(a) One seed: training accuracy at the end of each task, and the diagnostics at the last boundary."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = make_mlp(config.width)
    snapshot = fire.InitSnapshot.capture(model)
    x = x_all[torch.randperm(len(x_all), generator=generator)[: config.memorise_samples]]
    accuracies, diagnostics = [], {}
    for task in range(config.memorise_tasks):
        if task > 0:
            diagnostics = intervene_with_diagnostics(method, model, snapshot, x, config, generator)
        y = torch.randint(10, (len(x),), generator=generator)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        train_steps(model, optimizer, x, y, config.memorise_steps, config.batch_size, generator)
        accuracies.append(accuracy(model, x, y))
    return accuracies, diagnostics


def warm_start_run(method: str, seed: int, config: Config, x: Tensor, y: Tensor) -> tuple[list[float], dict]:
    """(b) One seed: test accuracy after each full-data epoch, and the diagnostics at the intervention."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    model = make_mlp(config.width)
    snapshot = fire.InitSnapshot.capture(model)
    subset = torch.randperm(len(x_train), generator=generator)[: round(config.warm_fraction * len(x_train))]
    steps_per_epoch = -(-len(subset) // config.batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    train_steps(model, optimizer, x_train[subset], y_train[subset], config.warm_epochs * steps_per_epoch,
                config.batch_size, generator)
    diagnostics = intervene_with_diagnostics(method, model, snapshot, x_train, config, generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    steps_per_epoch = -(-len(x_train) // config.batch_size)
    curve = []
    for _ in range(config.full_epochs):
        train_steps(model, optimizer, x_train, y_train, steps_per_epoch, config.batch_size, generator)
        curve.append(accuracy(model, x_test, y_test))
    return curve, diagnostics


def run(config: Config, methods: tuple[str, ...] = METHODS) -> dict:
    """Both experiments for every method and seed: {"memorise"|"warm_start": {method: {"curves":
    (seeds, points) array, "diagnostics": [per-seed {layer: {...}}]}}}."""
    x, y = digits()
    results: dict = {"memorise": {}, "warm_start": {}}
    experiments = {"memorise": lambda method, seed: memorisation_run(method, seed, config, x),
                   "warm_start": lambda method, seed: warm_start_run(method, seed, config, x, y)}
    for method in methods:
        for name, one_seed in experiments.items():
            start = time.perf_counter()
            outputs = [one_seed(method, seed) for seed in range(config.seeds)]
            results[name][method] = {"curves": np.array([curve for curve, _ in outputs]),
                                     "diagnostics": [diag for _, diag in outputs]}
            print(f"{name:10s} {method:15s} final {results[name][method]['curves'][:, -1].mean():.3f} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
    return results


def _ci_cell(values: np.ndarray) -> str:
    mean, low, high = bootstrap_mean_ci(values)
    return f"{float(mean):.3f} [{float(low):.3f}, {float(high):.3f}]"


def summary_table(results: dict) -> list[dict[str, str]]:
    """One row per method: (a) final-task and mean-over-tasks-2.. training accuracy, (b) final and
    best-epoch test accuracy; each "mean [95 % bootstrap CI low, high]" across seeds."""
    rows = []
    for method, memorise in results["memorise"].items():
        acc = memorise["curves"]  # (seeds, tasks)
        test = results["warm_start"][method]["curves"]  # (seeds, epochs)
        later = acc[:, 1:] if acc.shape[1] > 1 else acc
        rows.append({"method": method,
                     "(a) train acc, last task": _ci_cell(acc[:, -1]),
                     "(a) train acc, mean of tasks 2+": _ci_cell(later.mean(1)),
                     "(b) test acc, final": _ci_cell(test[:, -1]),
                     "(b) test acc, best epoch": _ci_cell(test.max(1))})
    return rows


def diagnostics_table(results: dict, experiment: str) -> list[dict[str, str]]:
    """Per method and layer, means over seeds of the diagnostics at the (last) intervention."""
    rows = []
    for method, entry in results[experiment].items():
        for layer in ("fc1", "fc2", "head"):
            per_seed = [d[layer] for d in entry["diagnostics"] if d]
            if not per_seed:
                continue
            row = {"method": method, "layer": layer}
            for key in per_seed[0]:
                value = float(np.mean([d[key] for d in per_seed]))
                row[key] = "n/a" if np.isnan(value) else f"{value:.3g}"
            rows.append(row)
    return rows


def draw(results: dict, out: Path) -> None:
    """(a) accuracy at the end of each task and (b) test accuracy per epoch after the intervention."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for method in results["memorise"]:
        for ax, name in ((left, "memorise"), (right, "warm_start")):
            curves = results[name][method]["curves"]
            mean, low, high = bootstrap_mean_ci(curves)
            x = np.arange(1, curves.shape[1] + 1)
            (line,) = ax.plot(x, mean, marker="o" if name == "memorise" else None, markersize=3, label=method)
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    left.set(title="(a) random-label memorisation", xlabel="task", ylabel="train accuracy at end of task")
    right.set(title="(b) warm start: 10 % then 100 % of digits", xlabel="epoch on 100 % (after intervention)",
              ylabel="test accuracy")
    left.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def report(results: dict, config: Config, seconds: float) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in asdict(config).items())
    return (
        "# CPU plasticity benchmark (`python -m bench.plasticity`)\n\n"
        f"Settings: {settings}. Wall time {seconds:.0f} s. Cells: mean over seeds "
        "[95 % percentile-bootstrap CI].\n\n" + markdown_table(pd.DataFrame(summary_table(results)))
        + "\n## Diagnostics at the last intervention of (a) (before task "
        f"{config.memorise_tasks}), means over seeds\n\n"
        "DfI = ||G - g^2 I||_F^2 with G the small-side Gram matrix and g = sqrt(d_out/d_in), FIRE's target "
        "(fire.dfi); dormant = fraction of tau=0.1-dormant ReLU units on the "
        "task's inputs; normalized_sfe = SFE(before, after) / SFE(before, theta_0).\n\n"
        + markdown_table(pd.DataFrame(diagnostics_table(results, "memorise")))
        + "\n## Diagnostics at the intervention of (b) (after the 10 % phase), means over seeds\n\n"
        + markdown_table(pd.DataFrame(diagnostics_table(results, "warm_start")))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plasticity", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny configuration (seconds), for smoke tests")
    parser.add_argument("--seeds", type=int, help="override the number of seeds")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"output folder (default {RESULTS})")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else Config()
    if args.seeds is not None:
        config = replace(config, seeds=args.seeds)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads cost more than they save, and the CPU is shared
    try:
        start = time.perf_counter()
        results = run(config)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    args.out.mkdir(parents=True, exist_ok=True)
    draw(results, args.out / "plasticity.png")
    (args.out / "plasticity.md").write_text(report(results, config, seconds))
    print(f"wrote {args.out / 'plasticity.png'} and {args.out / 'plasticity.md'} ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
