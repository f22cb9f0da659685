"""Inference throughput: ours vs timm, TimmWrapper and Transformers' ResNet, and our fast paths with agreement."""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from resnet_model import ResnetModelForImageClassification
from resnet_toolkit.fastpath import (
    AGREEMENT_FLOOR,
    AGREEMENT_IMAGES,
    ENGINES,
    detect_capabilities,
    engine_models,
    optimize_for_inference,
    top1_agreement,
)

from .common import calibrated_timm_model, interleave, sample_images, synchronize

# Transformers' own ResNet closest to each timm variant (Transformers has no deep-stem "d" variant).
HF_RESNET = {
    "resnet18": ("ResNet-18", {"layer_type": "basic", "depths": [2, 2, 2, 2], "hidden_sizes": [64, 128, 256, 512]}),
    "resnet34": ("ResNet-34", {"layer_type": "basic", "depths": [3, 4, 6, 3], "hidden_sizes": [64, 128, 256, 512]}),
    "resnet50": ("ResNet-50", {"layer_type": "bottleneck", "depths": [3, 4, 6, 3]}),
    "resnet50d": ("ResNet-50", {"layer_type": "bottleneck", "depths": [3, 4, 6, 3]}),
}
AGREEMENT_GOAL = AGREEMENT_FLOOR  # the goal is the automatic choice's floor, measured the same way


@dataclass
class Contender:
    """One way of running the model: `run(x)` returns float logits for a batch."""

    key: str
    label: str
    run: Callable[[torch.Tensor], torch.Tensor]
    compare: bool = False  # top-1 agreement against our fp32 eager predictions is measured


def hf_resnet(name: str) -> tuple[str, nn.Module] | None:
    """Transformers' built-in ResNet of the same depth (random weights), or None if it has no counterpart."""
    if name not in HF_RESNET:
        return None
    from transformers import ResNetConfig, ResNetForImageClassification

    label, fields = HF_RESNET[name]
    torch.manual_seed(0)
    return label, ResNetForImageClassification(ResNetConfig(num_labels=1000, **fields)).eval()


def timm_wrapper(name: str, timm_model: nn.Module) -> nn.Module:
    """`TimmWrapperForImageClassification` built from a config (no download), holding `timm_model`'s weights."""
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    wrapper = TimmWrapperForImageClassification(TimmWrapperConfig(architecture=name, num_labels=1000))
    wrapper.timm_model.load_state_dict(timm_model.state_dict())
    return wrapper.eval()


def engine_keys(device: str, *, use_compile: bool, use_onnx: bool) -> list[str]:
    """The engines timed one by one: every fp32 one, bf16 where native, int8 (opt-in, shown), compile if asked."""
    native_bf16 = detect_capabilities(device).bf16
    keys = []
    for key, engine in ENGINES.items():
        if key == "eager-fp32" or (engine.precision == "bf16" and not native_bf16):
            continue  # ours eager fp32 is the reference row; emulated bf16 is several times slower than fp32
        if (engine.engine == "torch-compile" and not use_compile) or (engine.exported and not use_onnx):
            continue
        keys.append(key)
    return keys


def fast_contenders(
    ours: nn.Module,
    images: torch.Tensor,
    facts: dict,
    contenders: list[Contender],
    *,
    device: str,
    use_compile: bool,
    use_onnx: bool,
) -> None:
    """Our engines one by one (one export for all), then `optimize_for_inference`'s automatic choice."""
    parity = images[:AGREEMENT_IMAGES]  # the automatic choice's own definition of agreement
    start = time.perf_counter()
    built = engine_models(
        copy.deepcopy(ours),
        engine_keys(device, use_compile=use_compile, use_onnx=use_onnx),
        images=parity,
        device=device,
    )
    facts["engines_setup_s"] = round(time.perf_counter() - start, 1)
    facts["engines_skipped"] = {k: v for k, v in built.items() if isinstance(v, str)}
    for key, fast in built.items():
        if isinstance(fast, str):
            continue
        facts.setdefault("engine_setup_s", {})[key] = fast.choice.setup_s
        engine = ENGINES[key]
        label = f"ours {engine.describe()}" + (" (opt-in)" if engine.opt_in else "")
        contenders.append(Contender(f"ours_{key}", label, lambda x, fast=fast: fast(x).logits, compare=True))
    start = time.perf_counter()
    auto = optimize_for_inference(copy.deepcopy(ours), images=parity, device=device, cache=False)
    facts["auto_first_call_s"] = round(time.perf_counter() - start, 1)
    facts["auto_choice"] = {str(b): c.as_dict() for b, c in auto.choices.items()}
    picked = ", ".join(f"b{b}: {ENGINES[c.engine].describe()}" for b, c in auto.choices.items())
    contenders.append(
        Contender("ours_auto", f"ours fast path, automatic ({picked})", lambda x: auto(x).logits, compare=True)
    )


def build_contenders(
    name: str, images: torch.Tensor, *, device: str, use_compile: bool, use_onnx: bool
) -> tuple[list[Contender], dict]:
    """Every way of running `name` that the table compares, plus facts about how they were built."""
    facts: dict = {}
    calibration = sample_images(48, images.shape[-1], seed=1)
    timm_model = calibrated_timm_model(name, calibration)
    ours = ResnetModelForImageClassification.from_timm(timm_model).eval()
    timm_model.to(device)
    ours.to(device)

    def no_grad(fn: Callable) -> Callable:
        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return fn(x)

        return run

    contenders = [
        Contender("timm", "timm eager fp32", no_grad(timm_model)),
        Contender("ours", "ours eager fp32", no_grad(lambda x: ours(pixel_values=x).logits)),
    ]
    wrapper = timm_wrapper(name, timm_model).to(device)
    contenders.append(
        Contender("timm_wrapper", "TimmWrapper eager fp32", no_grad(lambda x: wrapper(pixel_values=x).logits))
    )
    hf = hf_resnet(name)
    if hf is not None:
        label, hf_model = hf
        hf_model.to(device)
        facts["hf_resnet"] = label
        contenders.append(
            Contender(
                "hf_resnet", f"Transformers {label} eager fp32", no_grad(lambda x: hf_model(pixel_values=x).logits)
            )
        )

    fast_contenders(ours, images, facts, contenders, device=device, use_compile=use_compile, use_onnx=use_onnx)
    facts["_ours"] = ours
    facts["_timm"] = timm_model
    return contenders, facts


def agreement_pass(contenders: list[Contender], images: torch.Tensor, device: str, batch: int = 8) -> dict:
    """Top-1 agreement and max |diff| against our fp32 eager logits over `images`; warms every contender up."""
    logits: dict[str, torch.Tensor] = {}
    first_call: dict[str, float] = {}
    for contender in contenders:
        chunks = images.split(batch) if contender.compare or contender.key == "ours" else images[:batch].split(batch)
        outs = []
        for index, chunk in enumerate(chunks):
            synchronize(device)
            start = time.perf_counter()
            outs.append(contender.run(chunk.to(device)).float().cpu())
            synchronize(device)
            if index == 0:
                first_call[contender.key] = time.perf_counter() - start
        logits[contender.key] = torch.cat(outs)
    reference = logits["ours"]
    result = {
        "images": len(images),
        "ours_vs_timm_max_abs_diff": float((reference[:batch] - logits["timm"]).abs().max()),
        "timm_wrapper_vs_timm_max_abs_diff": float((logits["timm_wrapper"] - logits["timm"]).abs().max())
        if "timm_wrapper" in logits
        else None,
        "first_call_s": {k: round(v, 3) for k, v in first_call.items()},
        "top1_agreement": {},
        "max_abs_diff": {},
    }
    fitted = reference.max(0).values > -1e3  # classes the probe head can predict (the others sit at -1e4)
    for contender in contenders:
        if contender.compare:
            result["top1_agreement"][contender.key] = top1_agreement(reference, logits[contender.key])
            diff = (logits[contender.key] - reference)[:, fitted].abs().max()
            result["max_abs_diff"][contender.key] = float(diff)
    top2 = reference.topk(2, dim=-1).values
    margins = top2[:, 0] - top2[:, 1]
    result["median_top1_margin"] = float(margins.median())
    result["disagreeing_margins"] = {}  # the fp32 top-1 margin of each image whose top-1 changed
    for key, agreement in result["top1_agreement"].items():
        changed = logits[key].argmax(-1) != reference.argmax(-1)
        if agreement < 1.0:
            result["disagreeing_margins"][key] = sorted(float(m) for m in margins[changed])
    return result


def wrapper_overhead(ours: nn.Module, *, rounds: int, calls: int = 2000) -> dict:
    """Microseconds our forward adds around timm's compute: the call timed with that compute stubbed out."""
    inner = ours.model
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        features = inner.forward_features(x)
        logits = inner.forward_head(features)
        inner.forward_features = lambda pixel_values: features
        inner.forward_head = lambda feats, pre_logits=False: logits
        try:
            for _ in range(100):
                ours(pixel_values=x)
            timing = interleave({"ours": lambda: ours(pixel_values=x)}, rounds=rounds, calls=calls)
        finally:
            del inner.forward_features, inner.forward_head
    return {"overhead_us": timing.median("ours") * 1e6, "calls_per_round": calls, "rounds": rounds}


def run_inference(
    names: list[str],
    batches: list[int],
    images: torch.Tensor,
    *,
    rounds: int,
    target_s: float,
    device: str = "cpu",
    use_compile: bool = True,
    use_onnx: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Throughput of every contender for each model and batch size, as medians and paired ratios."""
    results: dict = {}
    for name in names:
        log(f"[inference] {name}: building contenders")
        contenders, facts = build_contenders(name, images, device=device, use_compile=use_compile, use_onnx=use_onnx)
        ours = facts.pop("_ours")
        facts.pop("_timm")
        entry: dict = {"facts": facts, "contenders": {c.key: c.label for c in contenders}}
        log(f"[inference] {name}: agreement on {len(images)} images (also warms up batch 8)")
        entry["agreement"] = agreement_pass(contenders, images, device)
        if device == "cpu":
            entry["wrapper_overhead"] = wrapper_overhead(ours, rounds=rounds)
        entry["batches"] = {}
        for batch in batches:
            x = images[:batch].to(device)
            first_call = {}
            for contender in contenders:  # warm-up; compiles each new shape
                start = time.perf_counter()
                contender.run(x)
                first_call[contender.key] = time.perf_counter() - start
                contender.run(x)
            start = time.perf_counter()
            contenders[0].run(x)
            calls = max(1, round(target_s / max(time.perf_counter() - start, 1e-6)))
            log(f"[inference] {name} batch {batch}: {rounds} rounds x {calls} calls")
            timing = interleave(
                {c.key: functools.partial(c.run, x) for c in contenders}, rounds=rounds, calls=calls, device=device
            )
            entry["batches"][str(batch)] = {
                "calls_per_round": calls,
                "first_call_s": {k: round(v, 3) for k, v in first_call.items()},
                "seconds_per_call": timing.seconds,
                "img_per_s": {c.key: batch / timing.median(c.key) for c in contenders},
                "ratio_vs_timm": {c.key: timing.ratio(c.key, "timm") for c in contenders},
                "ratio_vs_timm_range": {c.key: timing.ratio_spread(c.key, "timm") for c in contenders},
                "ours_ratio_vs": {c.key: timing.ratio("ours", c.key) for c in contenders},
                "best_round_ratio_vs_timm": {c.key: timing.best_ratio(c.key, "timm") for c in contenders},
            }
        results[name] = entry
    return results
