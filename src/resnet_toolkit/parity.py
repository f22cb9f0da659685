"""Numerical parity between a `ResnetModelForImageClassification` and the equivalent timm model."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

TOLERANCE = 1e-5


@dataclass
class ParityReport:
    """Largest absolute differences between our outputs and timm's on the same input."""

    timm_name: str
    input_shape: tuple[int, ...]
    diffs: dict[str, float] = field(default_factory=dict)
    tolerance: float = TOLERANCE

    @property
    def ok(self) -> bool:
        """True when every compared output is within the tolerance."""
        return all(d <= self.tolerance for d in self.diffs.values())

    def lines(self) -> list[str]:
        """A readable report, one line per compared output."""
        out = [
            f"parity against timm {self.timm_name!r} on input {tuple(self.input_shape)} (tolerance {self.tolerance:g}):"
        ]
        for name, diff in self.diffs.items():
            out.append(f"  {name:<16} max |diff| = {diff:.3e}  {'ok' if diff <= self.tolerance else 'MISMATCH'}")
        out.append("parity: OK" if self.ok else "parity: FAILED")
        return out


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


@torch.no_grad()
def compare(
    model: nn.Module, timm_model: nn.Module, timm_name: str, image_size: int = 64, batch: int = 2
) -> ParityReport:
    """Compare logits, features and stage outputs of `model` and `timm_model` (both in eval mode) on seeded noise."""
    model.eval()
    timm_model.eval()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, model.config.input_channels, image_size, image_size, generator=generator)
    report = ParityReport(timm_name=timm_name, input_shape=tuple(x.shape))
    ours = model(pixel_values=x, output_hidden_states=True)
    report.diffs["logits"] = _max_diff(ours.logits, timm_model(x))
    _, stages = timm_model.forward_intermediates(x)
    for name, a, b in zip(model.config.stage_names, ours.hidden_states, stages, strict=False):
        report.diffs[name] = _max_diff(a, b)
    return report
