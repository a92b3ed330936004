"""What an intervention did, per parameter: SFE, DfI before/after and time, for logs and TensorBoard.

DfI is the deviation from the isometry FIRE targets (fire.diagnostics.dfi): ||G - g^2 I||_F^2 with G the
weight's small-side Gram matrix (per tap and group for convs) and g FIRE's gain, sqrt(d_out/d_in) for a
Linear. So a layer FIRE has just orthogonalised shows ~0 whatever its shape (Newton-Schulz leaves a small
rest on ill-conditioned weights); for square layers it is the paper's ||W^T W - I||_F^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class LayerReport:
    """One changed Parameter. name is its qualified name ("encoder.0.weight"); dfi is NaN for 1-D ones."""

    name: str
    shape: tuple
    action: str
    sfe: float  # ||W_before - W_after||_F^2
    dfi_before: float
    dfi_after: float
    seconds: float  # time of the transform itself, diagnostics excluded


@dataclass
class Report:
    """Per-parameter record of one intervention (or several, see merge)."""

    method: str
    layers: list[LayerReport] = field(default_factory=list)

    @property
    def total_sfe(self) -> float:
        return sum(layer.sfe for layer in self.layers)

    @property
    def seconds(self) -> float:
        return sum(layer.seconds for layer in self.layers)

    def scalars(self, prefix: str) -> dict[str, float]:
        """Flat TensorBoard tags: "<prefix>/<param>/{sfe,dfi_before,dfi_after}", plus "<prefix>/total_sfe",
        "<prefix>/dfi_before", "<prefix>/dfi_after" (sums over parameters) and "<prefix>/seconds".

        A parameter listed more than once (a merged sequence of interventions) gets its SFEs summed,
        its first dfi_before and its last dfi_after. NaN DfIs (1-D parameters) are left out.
        """
        per_param: dict[str, dict[str, float]] = {}
        for layer in self.layers:
            if layer.name in per_param:
                per_param[layer.name]["sfe"] += layer.sfe
                per_param[layer.name]["dfi_after"] = layer.dfi_after
            else:
                per_param[layer.name] = {
                    "sfe": layer.sfe,
                    "dfi_before": layer.dfi_before,
                    "dfi_after": layer.dfi_after,
                }
        tags: dict[str, float] = {}
        totals = {"total_sfe": 0.0, "dfi_before": 0.0, "dfi_after": 0.0}
        for name, values in per_param.items():
            for metric, value in values.items():
                if math.isfinite(value):
                    tags[f"{prefix}/{name}/{metric}"] = value
                    totals["total_sfe" if metric == "sfe" else metric] += value
        tags.update({f"{prefix}/{metric}": value for metric, value in totals.items()})
        tags[f"{prefix}/seconds"] = self.seconds
        return tags

    @staticmethod
    def merge(*reports: Report) -> Report:
        """One report holding every layer of the given ones; method names joined with '+'."""
        methods = list(dict.fromkeys(report.method for report in reports))
        return Report("+".join(methods), [layer for report in reports for layer in report.layers])

    def __str__(self) -> str:
        header = ("parameter", "shape", "action", "sfe", "dfi_before", "dfi_after", "ms")
        rows = [
            (
                layer.name,
                "x".join(map(str, layer.shape)),
                layer.action,
                f"{layer.sfe:.4g}",
                f"{layer.dfi_before:.4g}",
                f"{layer.dfi_after:.4g}",
                f"{1e3 * layer.seconds:.2f}",
            )
            for layer in self.layers
        ]
        rows.append(("total", "", "", f"{self.total_sfe:.4g}", "", "", f"{1e3 * self.seconds:.2f}"))
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        # Text columns left-aligned, numbers right-aligned.
        lines = [f"{self.method}: {len(self.layers)} parameters changed "
                 "(dfi: deviation from FIRE's target isometry, ~0 after FIRE)"]
        for row in [header, *rows]:
            cells = [
                c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)
