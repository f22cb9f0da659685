"""Runners: one way each of computing a batch's logits (torch eager or compiled, ONNX Runtime, OpenVINO)."""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
from collections.abc import Callable, Iterator
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

    def computes_in(self) -> str:
        """The precision the engine really computes in ('fp32', 'bf16', 'int8'), as the engine itself reports it."""
        return "fp32"

    def accepts(self, pixel_values: torch.Tensor) -> bool:
        """Whether this runner can take `pixel_values` (exported graphs have a fixed image size)."""
        return self.input_shape is None or tuple(pixel_values.shape[1:]) == self.input_shape


# torch's float32 precision settings form a tree (global, then per backend, then per operation), and setting a node
# can rewrite the nodes below it: they are saved and restored whole, parents first.
PRECISION_NODES = ("", "mkldnn", "mkldnn.conv", "mkldnn.matmul", "mkldnn.rnn", "cuda.matmul", "cudnn", "cudnn.conv")


def precision_node(name: str) -> Any:
    """The node of torch.backends named `name` ("" for torch.backends itself) that holds a fp32_precision."""
    node: Any = torch.backends
    for part in filter(None, name.split(".")):
        node = getattr(node, part)
    return node


def _effective_precision(name: str) -> str:
    """A node's float32 precision, following 'none' up to its parents ('ieee' when every level says 'none')."""
    while True:
        value = precision_node(name).fp32_precision
        if value != "none" or not name:
            return "ieee" if value == "none" else value
        name = name.rpartition(".")[0]


@contextlib.contextmanager
def ieee_fp32() -> Iterator[None]:
    """float32 convolutions and matmuls computed in float32, whatever the process asked for.

    `torch.backends.mkldnn.fp32_precision = "bf16"` lets oneDNN run float32 layers in bf16 on CPUs with AMX or
    avx512_bf16: an "fp32" path must not. Where nothing asked for it (the default), nothing is changed.
    """
    if all(_effective_precision(name) == "ieee" for name in ("mkldnn.conv", "mkldnn.matmul")):
        yield
        return
    saved = {name: precision_node(name).fp32_precision for name in PRECISION_NODES}
    try:
        for name in ("mkldnn.conv", "mkldnn.matmul"):
            precision_node(name).fp32_precision = "ieee"
        yield
    finally:
        for name, value in saved.items():
            precision_node(name).fp32_precision = value


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
        strict = ieee_fp32() if self.dtype == torch.float32 else contextlib.nullcontext()
        # `no_grad` rather than `inference_mode`: Inductor's weight freezing needs it
        with torch.no_grad(), strict:
            return to_float32(self.call(pixel_values, *args, **kwargs))

    def computes_in(self) -> str:
        """bf16 for a bf16 module; fp32 otherwise (oneDNN held to IEEE float32 by `ieee_fp32`)."""
        return "bf16" if self.dtype == torch.bfloat16 else "fp32"

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The batch's primary output."""
        return primary_output(self.full(pixel_values))


def _numpy(pixel_values: torch.Tensor) -> np.ndarray:
    return pixel_values.detach().to("cpu", torch.float32).contiguous().numpy()


class OnnxRuntimeRunner(Runner):
    """An ONNX file on ONNX Runtime's CPU provider with every graph optimisation on."""

    def __init__(self, path: str | os.PathLike, input_shape: tuple[int, ...], threads: int):
        import onnxruntime as ort

        self.path = str(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting between calls: spinning threads would take the CPU from everything else in the process
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # fp32 stays fp32: ONNX Runtime's only reduced-precision GEMM for float32 models is opt-in (Arm bf16 fast math)
        options.add_session_config_entry(ORT_FASTMATH, "0")
        self.options = options
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = input_shape

    def computes_in(self) -> str:
        """int8 for a quantized graph, bf16 if fast math were on, else fp32."""
        quantized = ("QLinear", "QuantizeLinear", "DynamicQuantize", "ConvInteger", "MatMulInteger")
        if any(node.op_type.startswith(quantized) for node in self._graph_nodes()):
            return "int8"
        return "bf16" if self.options.get_session_config_entry(ORT_FASTMATH) == "1" else "fp32"

    def _graph_nodes(self) -> list[Any]:
        import onnx

        return list(onnx.load(self.path, load_external_data=False).graph.node)

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The batch's primary output."""
        return torch.from_numpy(self.session.run(None, {self.input_name: _numpy(pixel_values)})[0])


ORT_FASTMATH = "mlas.enable_gemm_fastmath_arm64_bfloat16"
# OpenVINO's CPU plugin runs float32 models in bf16 on CPUs with native bf16 unless told otherwise: always tell it
OPENVINO_PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8: quantized ops run in int8
OPENVINO_PRECISIONS = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


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
        self.precision = precision
        self.requests: dict[int | None, Any] = {}
        self.compiled: dict[int | None, Any] = {}
        for batch in batches:
            self._request(batch)

    def computes_in(self) -> str:
        """The inference precision OpenVINO compiled the graphs with (int8 for the quantized model's int8 engine)."""
        hints = {
            compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() for compiled in self.compiled.values()
        }
        names = {OPENVINO_PRECISIONS.get(hint, hint) for hint in hints}
        if len(names) != 1:
            return "/".join(sorted(names)) or "unknown"
        (name,) = names
        return "int8" if self.precision == "int8" and name == "fp32" else name

    def _request(self, batch: int | None) -> Any:
        """The infer request of the graph compiled for `batch` images (None: the dynamic-batch graph)."""
        if batch not in self.requests:
            model = self.model
            if batch is not None:
                model = self.model.clone()
                model.reshape([batch, *self.input_shape])
            self.compiled[batch] = self.core.compile_model(model, "CPU", self.config)
            self.requests[batch] = self.compiled[batch].create_infer_request()
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
