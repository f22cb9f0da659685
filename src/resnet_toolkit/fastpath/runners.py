"""Runners: one way each of computing a batch's logits (torch eager or compiled, ONNX Runtime, OpenVINO)."""

from __future__ import annotations

import functools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def primary_output(output: Any) -> torch.Tensor:
    """The tensor a model's output stands for: itself, its logits, its pooled features, or its first field."""
    if isinstance(output, torch.Tensor):
        return output
    for name in ("logits", "pooler_output"):
        value = output.get(name) if isinstance(output, dict) else getattr(output, name, None)
        if value is not None:
            return value
    return output[0]


def to_float32(output: Any) -> Any:
    """`output` with every floating-point tensor (also inside ModelOutputs and tuples) in float32."""
    if isinstance(output, torch.Tensor):
        return output.float() if output.is_floating_point() and output.dtype != torch.float32 else output
    if isinstance(output, dict):  # ModelOutput is an OrderedDict: update in place to keep its class
        for key, value in list(output.items()):
            output[key] = to_float32(value)
        return output
    if isinstance(output, tuple):
        return type(output)(to_float32(v) for v in output) if type(output) is tuple else output
    return output


class Runner:
    """Computes the primary output (logits, or pooled features) of a batch of pixel values, as float32 on CPU."""

    input_shape: tuple[int, ...] | None = None  # (channels, height, width) the runner was built for; None: any

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The batch's primary output."""
        raise NotImplementedError

    def accepts(self, pixel_values: torch.Tensor) -> bool:
        """Whether this runner can take `pixel_values` (exported graphs have a fixed image size)."""
        return self.input_shape is None or tuple(pixel_values.shape[1:]) == self.input_shape


class TorchRunner(Runner):
    """A torch module on its device, in its dtype and memory format, optionally through a compiled callable."""

    def __init__(self, module: nn.Module, *, dtype: torch.dtype, channels_last: bool, call: Callable | None = None):
        self.module = module
        self.device = next((p.device for p in module.parameters()), torch.device("cpu"))
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.call = module if call is None else call

    def full(self, pixel_values: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """The module's whole output, floating tensors in float32."""
        pixel_values = pixel_values.to(self.device, self.dtype, memory_format=self.memory_format)
        # `no_grad` rather than `inference_mode`: Inductor's weight freezing needs it
        with torch.no_grad():
            return to_float32(self.call(pixel_values, *args, **kwargs))

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The batch's primary output."""
        return primary_output(self.full(pixel_values))


def _numpy(pixel_values: torch.Tensor) -> np.ndarray:
    return pixel_values.detach().to("cpu", torch.float32).contiguous().numpy()


class OnnxRuntimeRunner(Runner):
    """An ONNX file on ONNX Runtime's CPU provider with every graph optimisation on."""

    def __init__(self, path: str | os.PathLike, input_shape: tuple[int, ...], threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting between calls: spinning threads would take the CPU from everything else in the process
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = input_shape

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The batch's primary output."""
        return torch.from_numpy(self.session.run(None, {self.input_name: _numpy(pixel_values)})[0])


OPENVINO_PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8: quantized ops run in int8


@functools.lru_cache(maxsize=1)
def openvino_core() -> Any:
    """One OpenVINO runtime for the process: its models share one CPU thread pool."""
    import openvino as ov

    return ov.Core()


class OpenVINORunner(Runner):
    """An ONNX file compiled by OpenVINO for the CPU (latency hint), a static-shape graph per calibrated batch."""

    def __init__(
        self, path: str | os.PathLike, input_shape: tuple[int, ...], threads: int, precision: str, batches: list[int]
    ):
        self.core = openvino_core()
        self.model = self.core.read_model(str(path))
        self.input_shape = input_shape
        self.config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": OPENVINO_PRECISION_HINTS[precision],
            "INFERENCE_NUM_THREADS": threads,
        }
        self.requests: dict[int | None, Any] = {}
        for batch in batches:
            self._request(batch)

    def _request(self, batch: int | None) -> Any:
        """The infer request of the graph compiled for `batch` images (None: the dynamic-batch graph)."""
        if batch not in self.requests:
            model = self.model
            if batch is not None:
                model = self.model.clone()
                model.reshape([batch, *self.input_shape])
            self.requests[batch] = self.core.compile_model(model, "CPU", self.config).create_infer_request()
        return self.requests[batch]

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The batch's primary output."""
        batch = pixel_values.shape[0]
        request = self.requests.get(batch) or self._request(None)
        request.infer({0: _numpy(pixel_values)})
        return torch.from_numpy(request.get_output_tensor(0).data.copy())


class Exports:
    """The ONNX files of one fp32 model (exported once, quantized once), in a directory deleted with this object."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], quantization_images: Callable[[], torch.Tensor]):
        self.model = model
        self.input_shape = input_shape
        self.quantization_images = quantization_images
        self.seconds: dict[str, float] = {}
        self._directory = tempfile.TemporaryDirectory(prefix="resnet-fastpath-")
        self._paths: dict[str, Path] = {}

    def onnx(self, precision: str = "fp32") -> Path:
        """The model as an ONNX file: fp32, or int8 (static quantization, calibrated on real images)."""
        if precision not in self._paths:
            from ..export import export_onnx, quantize_onnx

            path = Path(self._directory.name) / f"model-{precision}.onnx"
            start = time.perf_counter()
            if precision == "int8":
                quantize_onnx(self.onnx("fp32"), path, self.quantization_images())
                self.seconds["int8 quantization"] = time.perf_counter() - start
            else:
                try:  # the TorchScript exporter takes a fraction of the dynamo exporter's time
                    export_onnx(self.model, path, image_size=self.input_shape[1:], exporter="torchscript")
                except Exception:  # noqa: BLE001 - not available or not able to trace this model
                    export_onnx(self.model, path, image_size=self.input_shape[1:], exporter="dynamo")
                self.seconds["ONNX export"] = time.perf_counter() - start
            self._paths[precision] = path
        return self._paths[precision]
