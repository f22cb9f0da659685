"""Training-step throughput (forward + backward + optimizer): ours with `labels=` vs a plain timm loop."""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from resnet_model import ResnetModelForImageClassification

from .common import calibrated_timm_model, interleave, sample_images


def run_training(
    name: str, images: torch.Tensor, *, batch: int, rounds: int, device: str = "cpu", log: Callable = print
) -> dict:
    """Images per second of one SGD step on `batch` images, both loops from the same weights, interleaved."""
    timm_model = calibrated_timm_model(name, sample_images(24, images.shape[-1], seed=1)).to(device).train()
    ours = ResnetModelForImageClassification.from_timm(copy.deepcopy(timm_model)).to(device).train()
    x = images[:batch].to(device)
    labels = torch.arange(batch, device=device) % 1000

    def sgd(model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    timm_opt, ours_opt = sgd(timm_model), sgd(ours)

    def timm_step() -> None:
        loss = nn.functional.cross_entropy(timm_model(x), labels)
        loss.backward()
        timm_opt.step()
        timm_opt.zero_grad(set_to_none=True)

    def ours_step() -> None:
        ours(pixel_values=x, labels=labels).loss.backward()
        ours_opt.step()
        ours_opt.zero_grad(set_to_none=True)

    start = time.perf_counter()
    timm_step()
    ours_step()
    log(f"[training] {name} batch {batch}: warm-up {time.perf_counter() - start:.1f}s, {rounds} rounds")
    timing = interleave({"timm": timm_step, "ours": ours_step}, rounds=rounds, calls=1, device=device)
    return {
        "model": name,
        "batch": batch,
        "image_size": list(x.shape[-2:]),
        "seconds_per_step": timing.seconds,
        "img_per_s": {k: batch / statistics.median(v) for k, v in timing.seconds.items()},
        "ratio_ours_vs_timm": timing.ratio("ours", "timm"),
        "ratio_range": timing.ratio_spread("ours", "timm"),
    }
