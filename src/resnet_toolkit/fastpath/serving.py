"""Serving on the fast path: a command that classifies many images, a Transformers pipeline."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import torch
from torch import nn

from .calibration import Parity
from .model import FastModel, optimize_for_inference

FAST_PATH_MIN_IMAGES = 5  # from this many images on, calibrating (seconds, then cached) pays for itself
BATCH_SIZE = 8


def batched_logits(
    model: nn.Module, pixel_values: torch.Tensor, *, fast_path: bool | None = None, log: TextIO | None = None
) -> torch.Tensor:
    """Logits of `pixel_values`, 8 images at a time: on the fast path if asked, or (None) from 5 images on."""
    if fast_path is None:
        fast_path = len(pixel_values) >= FAST_PATH_MIN_IMAGES
    run: nn.Module = model
    if fast_path:
        run = optimize_for_inference(model, batch_sizes=(min(len(pixel_values), BATCH_SIZE),))
        choice = run.choice
        agreement = Parity(**choice.parity).describe()
        print(
            f"fast path: {choice.engine} ({choice.reason}; {agreement} on {choice.parity_images})",
            file=log or sys.stderr,
        )
    with torch.no_grad():
        return torch.cat([run(pixel_values=chunk).logits for chunk in pixel_values.split(BATCH_SIZE)])


def accelerate_pipeline(pipe: Any, **options: Any) -> Any:
    """Run a Transformers image pipeline's model on its fast path (options as for `optimize_for_inference`)."""
    if not isinstance(getattr(pipe, "model", None), nn.Module):
        raise ValueError("accelerate_pipeline needs a Transformers pipeline whose `model` is a torch module")
    if not isinstance(pipe.model, FastModel):
        pipe.model = optimize_for_inference(pipe.model, **options)
    return pipe
