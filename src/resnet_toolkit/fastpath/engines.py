"""The engines: one table of engine × precision with each one's parity tolerance, what it needs, and how to build it."""

from __future__ import annotations

import copy
import functools
import importlib.util
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from . import capabilities as caps
from .folding import fold_batchnorm
from .runners import Exports, OnnxRuntimeRunner, OpenVINORunner, Runner, TorchRunner, openvino_core

PRECISIONS = ("fp32", "bf16", "int8")
COMPILE_OPT_IN = "compiles for tens of seconds per input shape; ask for it by name"
INT8_OPT_IN = "int8 changes predictions more than bf16; an explicit opt-in (precision='int8')"
INSTALL_HINT = "pip install 'resnet-model[export]'"


@dataclass(frozen=True)
class Engine:
    """One way of running a model: an engine at a precision, and how far its logits may be from fp32 eager."""

    key: str
    engine: str
    precision: str
    tolerance: float  # largest |logit - fp32 eager logit| allowed, as a fraction of the largest |fp32 eager logit|
    opt_in: str = ""  # why the automatic choice leaves it out unless asked for; "" when it is always a candidate
    exported: bool = False  # runs an ONNX export of the model: logits (or pooled features) only

    def describe(self) -> str:
        """A short label, e.g. 'openvino fp32'."""
        return f"{self.engine} {self.precision}"


ENGINES: dict[str, Engine] = {
    e.key: e
    for e in (
        Engine("eager-fp32", "eager", "fp32", 0.0),
        Engine("torch-fp32", "torch", "fp32", 1e-4),
        Engine("torch-bf16", "torch", "bf16", 5e-2),
        Engine("torch-compile-fp32", "torch-compile", "fp32", 1e-4, opt_in=COMPILE_OPT_IN),
        Engine("torch-compile-bf16", "torch-compile", "bf16", 5e-2, opt_in=COMPILE_OPT_IN),
        Engine("onnxruntime-fp32", "onnxruntime", "fp32", 1e-4, exported=True),
        Engine("onnxruntime-int8", "onnxruntime", "int8", 0.25, opt_in=INT8_OPT_IN, exported=True),
        Engine("openvino-fp32", "openvino", "fp32", 1e-4, exported=True),
        Engine("openvino-bf16", "openvino", "bf16", 5e-2, exported=True),
        Engine("openvino-int8", "openvino", "int8", 0.25, opt_in=INT8_OPT_IN, exported=True),
    )
}
ENGINE_NAMES = tuple(dict.fromkeys(e.engine for e in ENGINES.values()))


def resolve(name: str, precision: str | None, native_bf16: bool) -> Engine:
    """The engine called `name` ('openvino' or 'openvino-fp32') at `precision` (default fp32; torch: bf16 if native)."""
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))} or None; got {precision!r}")
    if name in ENGINES:
        engine = ENGINES[name]
        if precision is not None and precision != engine.precision:
            raise ValueError(f"engine {name!r} runs in {engine.precision}, but precision={precision!r} was asked for")
        return engine
    if name not in ENGINE_NAMES:
        allowed = ", ".join(map(repr, ("auto", *ENGINE_NAMES)))
        raise ValueError(f"engine must be one of {allowed} or one of {', '.join(map(repr, ENGINES))}; got {name!r}")
    if precision is None:
        precision = "bf16" if name in ("torch", "torch-compile") and native_bf16 else "fp32"
    key = f"{name}-{precision}"
    if key not in ENGINES:
        have = ", ".join(e.precision for e in ENGINES.values() if e.engine == name)
        raise ValueError(f"engine {name!r} has no {precision} path (it has: {have})")
    return ENGINES[key]


@functools.cache
def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@functools.lru_cache(maxsize=1)
def openvino_capabilities() -> frozenset[str]:
    """OpenVINO's CPU optimisation capabilities (FP32, BF16, INT8, …); empty if OpenVINO has no CPU device."""
    core = openvino_core()
    if "CPU" not in core.available_devices:
        return frozenset()
    return frozenset(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries whose speed the calibration measures (None: not installed)."""
    versions: dict[str, str | None] = {"torch": torch.__version__}
    for module in ("onnxruntime", "openvino"):
        versions[module] = None
        if _installed(module):
            versions[module] = importlib.import_module(module).__version__
    return versions


def unavailable(
    engine: Engine,
    *,
    device: str,
    exportable: bool,
    native_bf16: bool,
    opted_in: bool = True,
    need_native: bool = False,
) -> str | None:
    """Why `engine` cannot run here, or is left out (opt-in not given, bf16 not native); None when it can run."""
    if not opted_in and engine.opt_in:
        return engine.opt_in
    if engine.engine in ("onnxruntime", "openvino"):
        if not _installed(engine.engine):
            return f"{engine.engine} is not installed ({INSTALL_HINT})"
        if device != "cpu":
            return f"a CPU engine; the model is on {device}"
        if not exportable:
            return "needs a Transformers image model (a config and `pixel_values`) to export to ONNX"
        if engine.precision == "int8" and not _installed("onnxruntime"):
            return f"int8 quantization needs onnxruntime ({INSTALL_HINT})"
        if engine.engine == "openvino":
            capabilities = openvino_capabilities()
            if not capabilities:
                return "OpenVINO finds no CPU device"
            if engine.precision == "bf16" and ("BF16" not in capabilities or not native_bf16):
                return "no native bf16 on this CPU for OpenVINO" + _isa_note()
    if engine.engine == "torch-compile":
        detected = caps.detect_capabilities(device)
        if device == "cpu" and caps._cxx_compiler() is None:
            return "no C++ compiler for Inductor"
        if device != "cpu" and not detected.compile:
            return detected.reasons["compile"]
    if need_native and engine.precision == "bf16" and not native_bf16:
        return "no native bf16 here: it would be emulated and slower" + _isa_note()
    return None


def _isa_note() -> str:
    isa = caps.cpu_isa_override()
    return f" ({caps.CPU_ISA_VARIABLE}={isa})" if isa != "native" else ""


def _checked(engine: Engine, runner: Runner, facts: dict[str, Any]) -> tuple[Runner, dict[str, Any]]:
    """`runner` and its facts, once the engine confirms it computes in the engine's precision (else RuntimeError)."""
    computed = runner.computes_in()
    if computed != engine.precision:
        raise RuntimeError(f"{engine.engine} would compute {engine.key} in {computed}, not {engine.precision}")
    return runner, {**facts, "computes_in": computed}


def exportable(model: nn.Module) -> bool:
    """Whether `model` is a Transformers image model that `resnet_toolkit.export` can export."""
    return hasattr(getattr(model, "config", None), "input_channels")


def build(
    engine: Engine,
    model: nn.Module,
    *,
    device: str,
    exports: Exports | None,
    batches: list[int],
    fold_bn: bool,
) -> tuple[Runner, dict[str, Any]]:
    """A runner of `model` on `engine` (the model itself is left as it is), and facts about what was done."""
    threads = torch.get_num_threads()
    if engine.exported:
        if exports is None:
            raise ValueError(f"{engine.key} needs an exportable model")
        path = exports.onnx(engine.precision)
        if engine.engine == "onnxruntime":
            return _checked(engine, OnnxRuntimeRunner(path, exports.input_shape, threads), {})
        return _checked(engine, OpenVINORunner(path, exports.input_shape, threads, engine.precision, batches), {})
    if engine.engine == "eager":
        return _checked(engine, TorchRunner(model, dtype=torch.float32, channels_last=False), {})
    settings = caps.choose(
        caps.detect_capabilities(device), bf16=engine.precision == "bf16", compile=engine.engine == "torch-compile"
    )
    module = copy.deepcopy(model)
    folded = fold_batchnorm(module) if fold_bn else 0
    dtype = torch.bfloat16 if settings.bf16 else torch.float32
    module = module.to(dtype)
    if settings.channels_last:
        module = module.to(memory_format=torch.channels_last)
    call = None
    if settings.compile:
        options = {"freezing": True, "max_autotune": True} if device == "cpu" else None
        call = torch.compile(module, mode=None if options else "max-autotune", options=options)
    facts = {"torch": settings.as_dict(), "folded_batchnorms": folded}
    return _checked(engine, TorchRunner(module, dtype=dtype, channels_last=settings.channels_last, call=call), facts)
