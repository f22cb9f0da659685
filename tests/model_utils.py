"""Helpers shared by the model tests."""

from __future__ import annotations

import torch


def randomize_batchnorm_stats(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-default running statistics, so that a round trip must preserve them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen))
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)
                module.num_batches_tracked.fill_(11)
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen))
