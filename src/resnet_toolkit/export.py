"""Export a model for deployment: `torch.export` programs and ONNX files, with a dynamic batch dimension."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


class LogitsOnly(nn.Module):
    """A Transformers image model seen as `pixel_values -> logits` (or `-> pooled features` for `ResnetModel`)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The model's first output: logits for a classifier, the pooled features for a feature extractor."""
        output = self.model(pixel_values=pixel_values, return_dict=True)
        return output.logits if hasattr(output, "logits") else output.pooler_output


def _example(model: nn.Module, image_size: int | tuple[int, int], batch_size: int) -> tuple[torch.Tensor]:
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    channels = model.config.input_channels
    parameter = next(model.parameters())
    return (torch.randn(batch_size, channels, height, width, dtype=parameter.dtype, device=parameter.device),)


def export_program(
    model: nn.Module, image_size: int | tuple[int, int] = 224, batch_size: int = 2
) -> torch.export.ExportedProgram:
    """`torch.export` of `pixel_values -> logits` in eval mode, with a dynamic batch dimension."""
    wrapped = LogitsOnly(model).eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    return torch.export.export(wrapped, _example(model, image_size, batch_size), dynamic_shapes=({0: batch},))


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    image_size: int | tuple[int, int] = 224,
    opset_version: int = 18,
) -> Path:
    """Write `pixel_values -> logits` as an ONNX file (dynamo exporter, dynamic batch) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = LogitsOnly(model).eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.onnx.export(
        wrapped,
        _example(model, image_size, 2),
        dynamo=True,
        input_names=["pixel_values"],
        output_names=["logits"],
        dynamic_shapes=({0: batch},),
        opset_version=opset_version,
        external_data=False,
    )
    program.save(str(path))
    return path


def onnx_logits(path: str | os.PathLike, pixel_values: torch.Tensor) -> torch.Tensor:
    """Run an exported ONNX file with onnxruntime (CPU) and return its logits as a tensor."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"pixel_values": pixel_values.detach().cpu().float().numpy()})
    return torch.from_numpy(logits)
