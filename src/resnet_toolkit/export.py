"""Export a model for deployment: `torch.export` programs and ONNX files (fp32 or int8), with a dynamic batch."""

from __future__ import annotations

import os
import warnings
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


EXPORTERS = ("dynamo", "torchscript")


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    image_size: int | tuple[int, int] = 224,
    opset_version: int = 18,
    exporter: str = "dynamo",
) -> Path:
    """Write `pixel_values -> logits` as an ONNX file (dynamic batch) and return its path.

    `exporter="torchscript"` traces the model (several times faster to run than the default dynamo exporter).
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {', '.join(map(repr, EXPORTERS))}; got {exporter!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = LogitsOnly(model).eval()
    example = _example(model, image_size, 2)
    if exporter == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(
                wrapped,
                example,
                str(path),
                dynamo=False,
                input_names=["pixel_values"],
                output_names=["logits"],
                dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=opset_version,
            )
        return path
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.onnx.export(
        wrapped,
        example,
        dynamo=True,
        input_names=["pixel_values"],
        output_names=["logits"],
        dynamic_shapes=({0: batch},),
        opset_version=opset_version,
        external_data=False,
        verbose=False,
    )
    program.save(str(path))
    return path


def quantize_onnx(
    path: str | os.PathLike, out: str | os.PathLike, calibration_images: torch.Tensor, batch_size: int = 8
) -> Path:
    """Write an int8 copy of the ONNX file `path` (static QDQ quantization, ranges measured on the images)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if calibration_images.ndim != 4 or len(calibration_images) == 0:
        raise ValueError(
            f"calibration_images must be a non-empty (N, C, H, W) batch, got {tuple(calibration_images.shape)}"
        )

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            chunks = calibration_images.detach().cpu().float().split(batch_size)
            self.batches = iter([{"pixel_values": chunk.contiguous().numpy()} for chunk in chunks])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    outputs = {o.name for o in graph.output}
    # the layer that writes the logits stays fp32: one int8 scale for all logits would merge close classes
    last = [node.name for node in graph.node if outputs & set(node.output)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    quantize_static(
        str(path),
        str(out),
        Batches(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=True,  # 7-bit weights: no saturation in the u8 x s8 products of CPUs without VNNI
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=last,
    )
    return out


def onnx_logits(path: str | os.PathLike, pixel_values: torch.Tensor) -> torch.Tensor:
    """Run an exported ONNX file with onnxruntime (CPU) and return its logits as a tensor."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"pixel_values": pixel_values.detach().cpu().float().numpy()})
    return torch.from_numpy(logits)
