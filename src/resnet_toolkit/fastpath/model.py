"""`optimize_for_inference`: calibrate the candidate engines on this machine, keep the fastest that keeps parity."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..samples import photos_available, sample_images
from . import capabilities as caps
from .calibration import (
    AGREEMENT_IMAGES,
    FastPathChoice,
    Parity,
    Timing,
    cache_path,
    compare,
    model_signature,
    parity,
    parity_digest,
    read_cache,
    time_side_by_side,
    write_cache,
)
from .engines import ENGINES, PRECISIONS, Engine, build, exportable, resolve, unavailable
from .runners import Exports, Runner, TorchRunner, primary_output

PARITY_BATCH = 8
QUANTIZATION_IMAGES = 16  # int8 ranges are measured on these many photo crops (other crops than the parity ones)


def _output_kind(output: Any) -> str | None:
    return next((k for k in ("logits", "pooler_output") if getattr(output, k, None) is not None), None)


class EngineUnavailable(RuntimeError):
    """An engine asked for by name cannot run here (not installed, wrong device, no compiler, …)."""


def _input_shape(model: nn.Module, images: torch.Tensor | None) -> tuple[int, int, int]:
    """(channels, height, width) the model is calibrated for: the images', else its config's, else 3×224×224."""
    if images is not None:
        return tuple(images.shape[1:])
    config = getattr(model, "config", None)
    channels = getattr(config, "input_channels", 3)
    size = (getattr(config, "pretrained_cfg", None) or {}).get("input_size", [3, 224, 224])
    return channels, int(size[-2]), int(size[-1])


def _parity_images(images: torch.Tensor | None, shape: tuple[int, int, int], count: int, seed: int) -> tuple:
    """The images parity is checked on (the given ones topped up to `count` with seeded crops), and what they are."""
    given = 0 if images is None else len(images)
    if given >= count:
        return images, f"{given} given images"
    channels, height, width = shape
    missing = photos_available()
    if missing is None and height == width:
        extra = sample_images(count - given, height, seed=seed, channels=channels)
        what = f"{count - given} photo crops ({height}²)"
    else:
        generator = torch.Generator().manual_seed(seed)
        extra = torch.randn(count - given, *shape, generator=generator)
        what = f"{count - given} seeded random images ({missing or 'non-square input'})"
    if images is None:
        return extra, what
    return torch.cat([images, extra.to(images.device, images.dtype)]), f"{given} given images + {what}"


def _check_arguments(
    engine: str, batch_sizes: Sequence[int], images: torch.Tensor | None, precision: str | None = None
) -> list[int]:
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))} or None; got {precision!r}")
    if not isinstance(engine, str):
        raise ValueError(f"engine must be a string such as 'auto' or 'openvino'; got {engine!r}")
    sizes = list(batch_sizes) if not isinstance(batch_sizes, int) else [batch_sizes]
    if not sizes or any(not isinstance(b, int) or isinstance(b, bool) or b < 1 for b in sizes):
        raise ValueError(f"batch_sizes must be one or more positive integers; got {batch_sizes!r}")
    if images is not None and (not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) == 0):
        raise ValueError("images must be a non-empty (N, C, H, W) tensor of pixel values, or None for photo crops")
    return sorted(set(sizes))


class _Calibration:
    """The state of one calibration: the reference outputs, the runners built so far and their parity."""

    def __init__(self, model: nn.Module, device: str, images: torch.Tensor | None, fold_bn: bool, batches: list[int]):
        shape = _input_shape(model, images)
        images, self.described = _parity_images(images, shape, AGREEMENT_IMAGES, seed=0)
        self.model = model
        self.device = device
        self.images = images.to(device)
        self.fold_bn = fold_bn
        self.batches = batches
        self.setup_s: dict[str, float] = {}
        self.runners: dict[str, Runner] = {"eager-fp32": TorchRunner(model, dtype=torch.float32, channels_last=False)}
        self.facts: dict[str, dict[str, Any]] = {"eager-fp32": {"computes_in": "fp32"}}
        self.parity: dict[str, Parity] = {}
        self.failed: dict[str, str] = {}
        self.eager_s: dict[int, float] = {}
        self._reference: torch.Tensor | None = None
        self._kind: str | None = None
        self.exports: Exports | None = None
        if exportable(model):
            quantize_on = images.shape[1:]
            self.exports = Exports(
                model, tuple(quantize_on), lambda: _parity_images(None, quantize_on, QUANTIZATION_IMAGES, seed=1)[0]
            )

    @property
    def reference(self) -> torch.Tensor:
        """fp32 eager's primary outputs of the parity images (computed once, timing eager on the way)."""
        if self._reference is None:
            start = time.perf_counter()
            outputs = []
            for chunk in self.images.split(PARITY_BATCH):
                chunk_start = time.perf_counter()
                outputs.append(self.runners["eager-fp32"].full(chunk))
                seconds = time.perf_counter() - chunk_start
                self.eager_s[len(chunk)] = min(seconds, self.eager_s.get(len(chunk), seconds))
            self._kind = _output_kind(outputs[0])
            self._reference = torch.cat([primary_output(output).float().cpu() for output in outputs])
            self.parity["eager-fp32"] = compare(self._reference, self._reference, 0.0)
            self.setup_s["fp32 eager reference"] = time.perf_counter() - start
        return self._reference

    @property
    def kind(self) -> str | None:
        """What the model's primary output is ('logits', 'pooler_output', or None)."""
        if self._reference is None and self._kind is None:
            self._kind = _output_kind(self.runners["eager-fp32"].full(self.images[:1]))
        return self._kind

    def build(self, engine: Engine) -> bool:
        """Build `engine`'s runner (once); False if it failed to build."""
        if engine.key in self.runners:
            return True
        if engine.key in self.failed:
            return False
        start = time.perf_counter()
        try:
            runner, facts = build(
                engine, self.model, device=self.device, exports=self.exports, batches=self.batches, fold_bn=self.fold_bn
            )
        except Exception as error:  # noqa: BLE001 - one engine failing must not stop the others
            self.failed[engine.key] = f"failed to build: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
            return False
        self.setup_s[f"build {engine.key}"] = time.perf_counter() - start
        self.runners[engine.key], self.facts[engine.key] = runner, facts
        return True

    def check(self, engine: Engine) -> bool:
        """Build `engine` and check its parity with fp32 eager (once); whether it keeps parity."""
        if not self.build(engine):
            return False
        if engine.key not in self.parity:
            start = time.perf_counter()
            runner = self.runners[engine.key]
            reference = self.reference
            self.parity[engine.key] = parity(reference, runner, self.images, PARITY_BATCH, engine.tolerance)
            self.setup_s[f"parity {engine.key}"] = time.perf_counter() - start
        return self.parity[engine.key].ok

    def time(self, keys: list[str], batch_size: int) -> Timing:
        """The runners of `keys` timed side by side on `batch_size` images, against one fp32 eager call."""
        batch = self.images[torch.arange(batch_size) % len(self.images)]
        self.reference  # noqa: B018 - the reference pass times fp32 eager at its own batch sizes
        start = time.perf_counter()
        if batch_size not in self.eager_s:  # the reference pass timed the eager model at its own batch sizes
            self.runners["eager-fp32"](batch)
            self.eager_s[batch_size] = time.perf_counter() - start
        runners = {k: self.runners[k] for k in keys if k != "eager-fp32"}
        timing = time_side_by_side(runners, batch, self.device, self.eager_s[batch_size])
        self.setup_s[f"timing batch {batch_size}"] = time.perf_counter() - start
        return timing


def _candidates(names: Sequence[str] | None, precision: str | None, native_bf16: bool) -> tuple[list[Engine], set[str]]:
    """The engines the automatic choice considers, and those named explicitly (their opt-in is granted)."""
    if names is not None:
        engines = [resolve(name, precision, native_bf16) for name in names]
        named = {e.key for e in engines}
    else:  # all of them (the opt-in ones are reported as left out), or those of the precision asked for
        engines = [e for e in ENGINES.values() if precision in (None, e.precision)]
        named = {e.key for e in engines if precision == "int8"}  # precision='int8' is the int8 opt-in
    eager = ENGINES["eager-fp32"]
    return [eager, *(e for e in engines if e is not eager)], named | {eager.key}


def _place(model: nn.Module, device: str | torch.device | None) -> tuple[nn.Module, str, bool]:
    """The model in eval mode on `device` (default: where its parameters are), the device, and its native bf16."""
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = "cuda:0" if str(device) == "cuda" else str(device)
    native_bf16 = caps.detect_capabilities(device).bf16
    return model.eval().to(device), device, native_bf16


def _fast_model(
    calibration: _Calibration, picks: dict[int, tuple], skipped: dict[str, str], started: float
) -> FastModel:
    """The FastModel running each batch size's pick, with the choices that say why."""
    calibration.setup_s.update(calibration.exports.seconds if calibration.exports else {})
    calibration.setup_s["total"] = time.perf_counter() - started
    choices = {
        b: FastPathChoice(
            engine=key,
            batch_size=b,
            device=calibration.device,
            reason=reason,
            parity=vars(calibration.parity[key]),
            parity_images=calibration.described,
            speedups=timing.speedup if timing else {},
            agreements={k: p.agreement for k, p in calibration.parity.items()},
            skipped=skipped,
            setup_s={k: round(v, 3) for k, v in calibration.setup_s.items()},
            cached=cached,
            torch=calibration.facts.get(key, {}).get("torch"),
            folded_batchnorms=calibration.facts.get(key, {}).get("folded_batchnorms", 0),
            computes_in=calibration.facts.get(key, {}).get("computes_in", ""),
        )
        for b, (key, reason, timing, cached) in picks.items()
    }
    runners = {b: calibration.runners[c.engine] for b, c in choices.items()}
    return FastModel(calibration.model, runners, choices, calibration.kind)


def optimize_for_inference(
    model: nn.Module,
    *,
    engine: str = "auto",
    precision: str | None = None,
    batch_sizes: Sequence[int] = (1, 8),
    candidates: Sequence[str] | None = None,
    images: torch.Tensor | None = None,
    cache: bool = True,
    fold_bn: bool = True,
    device: str | torch.device | None = None,
    verbose: bool = False,
) -> FastModel:
    """Put `model` on the fastest path for this machine at each of `batch_sizes` that keeps parity with fp32 eager.

    `engine="auto"` builds every available candidate (torch fp32 with BatchNorm folding and channels-last, bf16 where
    the CPU has it natively, ONNX Runtime, OpenVINO), times them side by side per batch size, checks them against
    fp32 eager on real photo crops (or `images`) from the fastest down, and keeps the first with ≥ 99% top-1
    agreement within its tolerance; results are cached per machine and model architecture (`cache=False`
    recalibrates). A named `engine` ('torch', 'torch-compile', 'onnxruntime', 'openvino', 'eager', or a key such as
    'openvino-fp32') skips the timing. `precision='int8'` opts into int8, `candidates=[...]` names the engines to
    calibrate among. The model itself is left unchanged (set to eval mode, moved to `device`); `fast.choice` says
    what was chosen and why.
    """
    sizes = _check_arguments(engine, batch_sizes, images, precision)
    if engine != "auto":
        options = {"precision": precision, "images": images, "fold_bn": fold_bn, "device": device}
        ((key, fast),) = engine_models(model, [engine], batch_sizes=sizes, **options).items()
        if isinstance(fast, str):
            raise EngineUnavailable(f"engine {key!r} cannot run here: {fast}")
        if not Parity(**fast.choice.parity).ok:
            warnings.warn(f"{key}: {Parity(**fast.choice.parity).describe()}", stacklevel=2)
    else:
        started = time.perf_counter()
        model, device, native_bf16 = _place(model, device)
        engines, named = _candidates(candidates, precision, native_bf16)
        calibration = _Calibration(model, device, images, fold_bn, sizes)
        automatic = candidates is None
        picks, skipped = _calibrate(calibration, engines, named, sizes, precision, native_bf16, cache, automatic)
        fast = _fast_model(calibration, picks, skipped, started)
    if verbose:
        for choice in fast.choices.values():
            print(choice)
    return fast


def engine_models(
    model: nn.Module,
    engines: Sequence[str],
    *,
    precision: str | None = None,
    batch_sizes: Sequence[int] = (1, 8),
    images: torch.Tensor | None = None,
    fold_bn: bool = True,
    device: str | torch.device | None = None,
) -> dict[str, FastModel | str]:
    """A FastModel per named engine (one ONNX export and one fp32 eager reference for all), or why it cannot run."""
    started = time.perf_counter()
    sizes = _check_arguments("auto", batch_sizes, images, precision)
    model, device, native_bf16 = _place(model, device)
    chosen = [resolve(name, precision, native_bf16) for name in engines]
    results: dict[str, FastModel | str] = {}
    for engine in chosen:
        why = unavailable(engine, device=device, exportable=exportable(model), native_bf16=native_bf16)
        if why is not None:
            results[engine.key] = why
    calibration = None
    for engine in chosen:
        if engine.key in results:
            continue
        calibration = calibration or _Calibration(model, device, images, fold_bn, sizes)
        if not calibration.check(engine) and engine.key in calibration.failed:
            results[engine.key] = calibration.failed[engine.key]
        else:
            results[engine.key] = _fast_model(
                calibration, {b: (engine.key, "requested", None, False) for b in sizes}, {}, started
            )
    return results


def _calibrate(
    calibration: _Calibration,
    engines: list[Engine],
    named: set[str],
    sizes: list[int],
    precision: str | None,
    native_bf16: bool,
    use_cache: bool,
    automatic: bool,
) -> tuple[dict[int, tuple], dict[str, str]]:
    """Per batch size (engine key, reason, timing or None, from cache), and the engines left out with why."""
    model = calibration.model
    skipped: dict[str, str] = {}
    usable: list[Engine] = []
    for engine in engines:
        why = unavailable(
            engine,
            device=calibration.device,
            exportable=exportable(model),
            native_bf16=native_bf16,
            opted_in=engine.key in named,
            need_native=automatic and precision is None,
        )
        if why is None:
            usable.append(engine)
        else:
            skipped[engine.key] = why
    keys = [e.key for e in usable]
    signature = model_signature(model, tuple(calibration.images.shape[1:]))
    weights = parity_digest(model, calibration.images) if use_cache else ""
    picks: dict[int, tuple] = {}
    for batch in sizes:
        path, key = cache_path(signature, calibration.device, batch, keys)
        cached = read_cache(path, key) if use_cache else None
        if cached and _from_cache(calibration, cached, weights):
            timing = Timing(batch, cached["speedup"], cached["seconds_per_call"], {})
            reason = f"fastest with parity in this machine's calibration of {cached['date']}"
            picks[batch] = (cached["engine"], reason, timing, True)
            continue
        built = [e.key for e in usable if calibration.build(e)]
        timing = calibration.time(built, batch)
        # parity is checked from the fastest down: the first path that keeps it wins (fp32 eager always does)
        ranked = sorted(built, key=lambda k: -timing.speedup[k])
        best = next(k for k in ranked if calibration.check(ENGINES[k]))
        faster = ranked[: ranked.index(best)]
        reason = f"{timing.speedup[best]:.2f}× fp32 eager in calibration, the fastest"
        reason += f" that keeps parity ({', '.join(faster)} did not)" if faster else ""
        picks[batch] = (best, reason, timing, False)
        if use_cache:
            write_cache(path, key, timing, best, calibration.parity, weights)
    for key, why in calibration.failed.items():
        skipped[key] = why
    for key, result in calibration.parity.items():
        if not result.ok:
            skipped[key] = f"parity: {result.describe()}"
    return picks, skipped


def _from_cache(calibration: _Calibration, cached: dict[str, Any], weights: str) -> bool:
    """Whether the cached engine keeps parity: as measured then for the same weights, else measured now."""
    engine = ENGINES[cached["engine"]]
    known = cached.get("parity", {}).get(engine.key) if cached.get("weights") == weights else None
    if known is None or not calibration.build(engine):
        return calibration.check(engine)
    calibration.parity[engine.key] = Parity(**known)
    calibration.described = f"{calibration.described}, measured for these weights when calibrated"
    return calibration.parity[engine.key].ok


def check_engines(
    model: nn.Module,
    *,
    engines: Sequence[str] | None = None,
    images: torch.Tensor | None = None,
    fold_bn: bool = True,
    device: str | torch.device | None = None,
) -> dict[str, Parity | str]:
    """Each engine's parity with fp32 eager on real photo crops (or `images`), or why it cannot run here."""
    names = list(ENGINES) if engines is None else engines
    built = engine_models(model, names, batch_sizes=(PARITY_BATCH,), images=images, fold_bn=fold_bn, device=device)
    return {k: v if isinstance(v, str) else Parity(**v.choice.parity) for k, v in built.items()}


class FastModel(nn.Module):
    """An inference-only view of a model on its fast path; `choice` (`choices` per batch size) says what runs."""

    def __init__(
        self, model: nn.Module, runners: dict[int, Runner], choices: dict[int, FastPathChoice], kind: str | None
    ):
        super().__init__()
        self.model = model
        self.choices = choices
        self.kind = kind  # "logits", "pooler_output", or None for a model whose output is passed through
        self._runners = runners
        self._eager = TorchRunner(model, dtype=torch.float32, channels_last=False)
        self._warned = False

    @property
    def choice(self) -> FastPathChoice:
        """The choice for the smallest calibrated batch size."""
        return self.choices[min(self.choices)]

    @property
    def dtype(self) -> torch.dtype:
        """The dtype callers give pixel values in (float32; a reduced-precision path converts them itself)."""
        return torch.float32

    @property
    def device(self) -> torch.device:
        """Where pixel values are expected."""
        return next((p.device for p in self.model.parameters()), torch.device("cpu"))

    def __getattr__(self, name: str) -> Any:
        """Anything else (config, can_generate, …) comes from the wrapped model, so pipelines can hold a FastModel."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("model"), name)

    def choice_for(self, batch_size: int) -> FastPathChoice:
        """The choice of the largest calibrated batch size not above `batch_size` (else of the smallest)."""
        sizes = sorted(self.choices)
        fitting = [b for b in sizes if b <= batch_size]
        return self.choices[fitting[-1] if fitting else sizes[0]]

    def runner_for(self, pixel_values: torch.Tensor) -> Runner:
        """The runner chosen for this batch's size (fp32 eager for an image size other than the calibrated one)."""
        runner = self._runners[self.choice_for(pixel_values.shape[0]).batch_size]
        if runner.accepts(pixel_values):
            return runner
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"input {tuple(pixel_values.shape[1:])} differs from the calibrated {runner.input_shape}: "
                "running fp32 eager for it",
                stacklevel=3,
            )
        return self._eager

    def forward(self, pixel_values: torch.Tensor, *args: Any, return_dict: bool | None = None, **kwargs: Any) -> Any:
        """The model's output for `pixel_values`, computed on the fast path; floating outputs come back as float32."""
        runner = self.runner_for(pixel_values)
        if isinstance(runner, TorchRunner):
            if return_dict is not None:
                kwargs["return_dict"] = return_dict
            return runner.full(pixel_values, *args, **kwargs)
        extra = [str(a) for a in args] + [k for k, v in kwargs.items() if v is not None]
        if extra:
            raise ValueError(
                f"the {self.choice_for(pixel_values.shape[0]).engine} path computes {self.kind} only; "
                f"call the model itself for {', '.join(extra)}"
            )
        tensor = runner(pixel_values)
        if return_dict is False:
            return (tensor,)
        from transformers.modeling_outputs import (
            BaseModelOutputWithPoolingAndNoAttention,
            ImageClassifierOutputWithNoAttention,
        )

        if self.kind == "logits":
            return ImageClassifierOutputWithNoAttention(logits=tensor)
        return BaseModelOutputWithPoolingAndNoAttention(pooler_output=tensor)
