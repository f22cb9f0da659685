"""Fast inference: channels-last memory, bfloat16 and `torch.compile`, chosen by what the machine supports.

```python
from resnet_toolkit.fastpath import optimize_for_inference

fast = optimize_for_inference(model)  # model: ResnetModelForImageClassification or any image nn.Module
print(fast.choice)  # what was turned on, and why
logits = fast(pixel_values).logits  # float32 logits, computed on the fast path
```
"""

from __future__ import annotations

import functools
import shutil
import sys
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

__all__ = [
    "Capabilities",
    "FastPathChoice",
    "FastModel",
    "cpu_flags",
    "detect_capabilities",
    "choose",
    "fold_batchnorm",
    "optimize_for_inference",
    "top1_agreement",
]

# CPU feature flags (Linux /proc/cpuinfo names) that give native bfloat16 arithmetic.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
# Measured in BENCHMARKS.md: on CPU, compiling adds at most a few percent to bf16 + channels-last eager, for
# tens of seconds of compilation per input shape; pass `compile=True` to have it anyway.
CPU_COMPILE_NOTE = "gains a few percent over eager bf16/channels-last for tens of seconds per input shape"


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (x86 `flags`, Arm `Features`) from /proc/cpuinfo; empty where unavailable."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def _mkldnn_available() -> bool:
    return torch.backends.mkldnn.is_available()


def _mkldnn_bf16_supported() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _cxx_compiler() -> str | None:
    """The C++ compiler Inductor would use on CPU, if one is installed."""
    if sys.platform == "win32":
        return None
    for name in ("g++", "clang++", "c++"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Capabilities:
    """Which speed-ups pay off on the device (the defaults of `choose`), with the evidence."""

    device: str
    channels_last: bool
    bf16: bool
    compile: bool
    reasons: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form for reports."""
        return asdict(self)


def detect_capabilities(device: str | torch.device = "cpu") -> Capabilities:
    """Probe `device` (CPU: oneDNN and CPU flags; CUDA: compute capability) for channels-last, bf16 and compile."""
    device = str(device)
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"Device {device!r} requested but CUDA is not available.")
        major, minor = torch.cuda.get_device_capability(device)
        name = torch.cuda.get_device_name(device)
        bf16 = major >= 8 and torch.cuda.is_bf16_supported()
        triton = _triton_available()
        cores = "has" if major >= 7 else "no"
        return Capabilities(
            device=device,
            channels_last=major >= 7,
            bf16=bf16,
            compile=triton,
            reasons={
                "channels_last": f"{name}, compute capability {major}.{minor} ({cores} tensor cores)",
                "bf16": f"compute capability {major}.{minor} ({'>=' if bf16 else '<'} 8.0 for native bf16)",
                "compile": "triton is installed" if triton else "triton is not installed",
            },
        )
    if device != "cpu":
        raise ValueError(f"Unsupported device {device!r}: use 'cpu' or 'cuda[:N]'.")
    mkldnn = _mkldnn_available()
    flags = cpu_flags()
    native = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    bf16 = mkldnn and bool(native) and _mkldnn_bf16_supported()
    if bf16:
        bf16_reason = f"CPU has {', '.join(native)} and oneDNN supports bf16"
    elif not mkldnn:
        bf16_reason = "oneDNN (mkldnn) is not available in this torch build"
    else:
        bf16_reason = f"CPU lacks native bf16 ({' / '.join(BF16_CPU_FLAGS[:2])}): bf16 would be emulated and slower"
    compiler = _cxx_compiler()
    if compiler:
        compile_reason = f"off by default on CPU (C++ compiler {compiler} found): {CPU_COMPILE_NOTE}"
    else:
        compile_reason = "no C++ compiler for Inductor"
    return Capabilities(
        device="cpu",
        channels_last=mkldnn,
        bf16=bf16,
        compile=False,
        reasons={
            "channels_last": "oneDNN is available" if mkldnn else "oneDNN (mkldnn) is not available",
            "bf16": bf16_reason,
            "compile": compile_reason,
        },
    )


@dataclass(frozen=True)
class FastPathChoice:
    """The speed-ups turned on for one model, and why each was chosen."""

    device: str
    channels_last: bool
    bf16: bool
    compile: bool
    reasons: dict[str, str]
    folded_batchnorms: int = 0

    def __str__(self) -> str:
        parts = [
            f"{name}={'on' if getattr(self, name) else 'off'} ({self.reasons[name]})"
            for name in ("channels_last", "bf16", "compile")
        ]
        return f"fast path on {self.device}: " + ", ".join(parts) + f", {self.folded_batchnorms} BatchNorms folded"

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form for reports."""
        return asdict(self)


def choose(
    capabilities: Capabilities,
    *,
    channels_last: bool | None = None,
    bf16: bool | None = None,
    compile: bool | None = None,
) -> FastPathChoice:
    """Resolve each `None` to what `capabilities` supports; an explicit True/False always wins."""
    values: dict[str, bool] = {}
    reasons: dict[str, str] = {}
    for name, requested in (("channels_last", channels_last), ("bf16", bf16), ("compile", compile)):
        supported = getattr(capabilities, name)
        if requested is None:
            values[name] = supported
            reasons[name] = f"auto: {capabilities.reasons.get(name, 'supported' if supported else 'unsupported')}"
        else:
            values[name] = bool(requested)
            off_by_default = "off by default" in capabilities.reasons.get(name, "")
            unsupported = requested and not supported and not off_by_default
            reasons[name] = "requested" + (" (not detected as supported)" if unsupported else "")
    return FastPathChoice(device=capabilities.device, reasons=reasons, **values)


def _fold_traced(root: nn.Module) -> int:
    """Fold the BatchNorms of `root` (FX-traceable) that directly follow a Conv2d with no other user."""
    import torch.fx
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    graph = torch.fx.symbolic_trace(root).graph
    modules = dict(root.named_modules())
    folded = 0
    for node in graph.nodes:
        bn = modules.get(node.target) if node.op == "call_module" else None
        # a BatchNorm held by the traced root itself is kept: wrappers may read it (e.g. for the model's dtype)
        if not isinstance(bn, nn.BatchNorm2d) or "." not in node.target or not node.args:
            continue
        prev = node.args[0]
        conv = modules.get(prev.target) if isinstance(prev, torch.fx.Node) and prev.op == "call_module" else None
        if not isinstance(conv, nn.Conv2d) or len(prev.users) != 1 or not bn.track_running_stats:
            continue
        fused = fuse_conv_bn_eval(conv, bn)
        conv.weight, conv.bias = fused.weight, fused.bias
        parent, _, name = node.target.rpartition(".")
        setattr(modules[parent], name, nn.Identity())
        folded += 1
    return folded


def fold_batchnorm(model: nn.Module) -> int:
    """Fold inference BatchNorms into the convolutions before them, in place; returns how many were folded.

    Works on every FX-traceable sub-module (a timm ResNet inside our wrapper); others are left as they are.
    """
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode.")
    try:
        return _fold_traced(model)
    except Exception:  # noqa: BLE001 - not traceable as a whole: try its children
        return sum(fold_batchnorm(child) for child in model.children())


def _to_float32(output: Any) -> Any:
    """`output` with every floating-point tensor (also inside ModelOutputs and tuples) in float32."""
    if isinstance(output, torch.Tensor):
        return output.float() if output.is_floating_point() and output.dtype != torch.float32 else output
    if isinstance(output, dict):  # ModelOutput is an OrderedDict: update in place to keep its class
        for key, value in list(output.items()):
            output[key] = _to_float32(value)
        return output
    if isinstance(output, tuple):
        return type(output)(_to_float32(v) for v in output) if type(output) is tuple else output
    return output


class FastModel(nn.Module):
    """An inference-only view of a model on its fast path; `choice` says what is on."""

    def __init__(self, model: nn.Module, choice: FastPathChoice):
        super().__init__()
        self.model = model
        self.choice = choice
        self.dtype = torch.bfloat16 if choice.bf16 else torch.float32
        self.memory_format = torch.channels_last if choice.channels_last else torch.contiguous_format
        self._call = (
            torch.compile(model, options={"freezing": True} if choice.device == "cpu" else None)
            if choice.compile
            else model
        )

    def forward(self, pixel_values: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """Run the model on `pixel_values` without autograd; floating outputs come back as float32."""
        pixel_values = pixel_values.to(self.choice.device, self.dtype, memory_format=self.memory_format)
        # `no_grad` rather than `inference_mode`: Inductor's weight freezing needs it
        with torch.no_grad():
            output = self._call(pixel_values, *args, **kwargs)
        return _to_float32(output)


def optimize_for_inference(
    model: nn.Module,
    *,
    channels_last: bool | None = None,
    bf16: bool | None = None,
    compile: bool | None = None,
    fold_bn: bool = True,
    device: str | torch.device | None = None,
    verbose: bool = False,
) -> FastModel:
    """Put `model` on its fast path; each option left at None is chosen by what `device` supports.

    The model is changed in place: moved to `device` (default: where its parameters are), set to eval mode, its
    BatchNorms folded into the preceding convolutions (in float32, `fold_bn=True`), converted to bfloat16 and/or
    channels-last if chosen, and wrapped in a `FastModel` whose `choice` reports the result. Compilation happens
    at the first call for each input shape (on CPU: Inductor with weight freezing).
    """
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = str(device)
    if device == "cuda":
        device = "cuda:0"
    choice = choose(detect_capabilities(device), channels_last=channels_last, bf16=bf16, compile=compile)
    model = model.eval().to(device)
    folded = fold_batchnorm(model) if fold_bn else 0
    choice = replace(choice, folded_batchnorms=folded)
    if choice.bf16:
        model = model.to(torch.bfloat16)
    if choice.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if verbose:
        print(choice)
    return FastModel(model, choice)


def top1_agreement(reference_logits: torch.Tensor, logits: torch.Tensor) -> float:
    """Fraction of images whose top-1 class is the same in `logits` as in `reference_logits`."""
    if reference_logits.shape != logits.shape:
        raise ValueError(f"Logit shapes differ: {tuple(reference_logits.shape)} vs {tuple(logits.shape)}.")
    return float((reference_logits.argmax(-1) == logits.float().argmax(-1)).float().mean())
