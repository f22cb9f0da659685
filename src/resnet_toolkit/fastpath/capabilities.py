"""What the device supports: native bf16, channels-last (oneDNN), a compiler for `torch.compile`; CPU identity."""

from __future__ import annotations

import functools
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

# CPU feature flags (Linux /proc/cpuinfo names) that give native bfloat16 arithmetic.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
# Measured in BENCHMARKS.md: on CPU, compiling costs tens of seconds to minutes per input shape (max-autotune), far
# longer than a calibration run; ask for the "torch-compile" engine to have it anyway.
CPU_COMPILE_NOTE = "compiling takes tens of seconds per input shape"


# `RESNET_MODEL_CPU_ISA` makes the probe see a lesser x86 CPU than the one it runs on, so that the choices (and the
# tests) of another CPU kind can be exercised on any machine: the flags of the instruction sets above the named one are
# hidden. Set `ONEDNN_MAX_CPU_ISA` (AVX2, AVX512_CORE, …) too, before torch is imported, to make oneDNN's kernels match.
CPU_ISA_VARIABLE = "RESNET_MODEL_CPU_ISA"
HIDDEN_ABOVE = {
    "native": (),
    "amx": (),
    "avx512": ("amx",),
    "avx2": ("amx", "avx512"),
}


def cpu_isa_override() -> str:
    """The instruction-set ceiling `RESNET_MODEL_CPU_ISA` asks for ('native' when unset); ValueError when unknown."""
    value = os.environ.get(CPU_ISA_VARIABLE, "").strip().lower() or "native"
    if value not in HIDDEN_ABOVE:
        allowed = ", ".join(map(repr, HIDDEN_ABOVE))
        raise ValueError(f"{CPU_ISA_VARIABLE} must be one of {allowed}; got {value!r}")
    return value


@functools.lru_cache(maxsize=1)
def _proc_cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (x86 `flags`, Arm `Features`) in /proc/cpuinfo, less any `RESNET_MODEL_CPU_ISA` hides."""
    hidden = HIDDEN_ABOVE[cpu_isa_override()]
    return frozenset(flag for flag in _proc_cpu_flags() if not flag.startswith(hidden))


def cpu_kind(flags: frozenset[str] | None = None) -> str:
    """'amx', 'avx512', 'avx2' or 'other': the x86 instruction-set family the fast path's numerics depend on."""
    flags = cpu_flags() if flags is None else flags
    for kind, marker in (("amx", "amx_bf16"), ("avx512", "avx512f"), ("avx2", "avx2")):
        if marker in flags:
            return kind
    return "other"


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name as the OS reports it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_bf16() -> list[str]:
    """The CPU flags that give native bfloat16 arithmetic, of those this CPU has."""
    flags = cpu_flags()
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]


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
    native = native_bf16()
    bf16 = mkldnn and bool(native) and _mkldnn_bf16_supported()
    if bf16:
        bf16_reason = f"CPU has {', '.join(native)} and oneDNN supports bf16"
    elif not mkldnn:
        bf16_reason = "oneDNN (mkldnn) is not available in this torch build"
    else:
        bf16_reason = f"CPU lacks native bf16 ({' / '.join(BF16_CPU_FLAGS[:2])}): bf16 would be emulated and slower"
        if cpu_isa_override() != "native":
            bf16_reason += f" ({CPU_ISA_VARIABLE}={cpu_isa_override()})"
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
class TorchSettings:
    """The torch speed-ups turned on for one model (channels-last, bf16, compile), and why each was chosen."""

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
) -> TorchSettings:
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
    return TorchSettings(device=capabilities.device, reasons=reasons, **values)
