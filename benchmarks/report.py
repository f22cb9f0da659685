"""Turn the raw results into the goals table, the terminal summary and BENCHMARKS.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .inference import AGREEMENT_GOAL

FAST_PREFIX = "ours_"
SPEED_GOAL = 2.4
MB = 1e6


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _rate(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def best_fast_path(entry: dict, batch: str) -> tuple[str, float, float] | None:
    """The fastest of our optimised paths that keeps top-1 agreement >= the goal: (key, ratio vs timm, agreement)."""
    agreement = entry["agreement"]["top1_agreement"]
    ratios = entry["batches"][batch]["ratio_vs_timm"]
    candidates = [
        (key, ratio, agreement[key])
        for key, ratio in ratios.items()
        if key.startswith(FAST_PREFIX) and agreement.get(key, 0.0) >= AGREEMENT_GOAL
    ]
    return max(candidates, key=lambda c: c[1]) if candidates else None


def _fastest_fast_path(entry: dict, batch: str) -> tuple[str, float, float] | None:
    agreement = entry["agreement"]["top1_agreement"]
    ratios = entry["batches"][batch]["ratio_vs_timm"]
    candidates = [(k, r, agreement.get(k, 0.0)) for k, r in ratios.items() if k.startswith(FAST_PREFIX)]
    return max(candidates, key=lambda c: c[1]) if candidates else None


def auto_goal(name: str, entry: dict, batch: str) -> tuple[str, str, bool]:
    """The issue's goal for one model and batch size: the automatic choice ≥ 2.4× timm eager at ≥ 99% top-1."""
    goal = f"{name} b{batch}: automatic fast path ≥ {SPEED_GOAL}× timm eager fp32, ≥ 99% top-1"
    ratios = entry["batches"][batch]["ratio_vs_timm"]
    agreement = entry["agreement"]["top1_agreement"]
    if "ours_auto" not in ratios:
        return goal, "not measured", False
    ratio, agree = ratios["ours_auto"], agreement.get("ours_auto", 0.0)
    engine = entry["facts"]["auto_choice"][batch]["engine"] if batch in entry["facts"]["auto_choice"] else "?"
    measured = f"{engine}: {ratio:.2f}× at {_pct(agree)} agreement"
    best = best_fast_path(entry, batch)
    if best and best[0] != "ours_auto":
        measured += f"; fastest with ≥ 99%: {entry['contenders'][best[0]]} {best[1]:.2f}×"
    fastest = _fastest_fast_path(entry, batch)
    if fastest and (not best or fastest[0] != best[0]):
        key, fast_ratio, fast_agree = fastest
        measured += f"; fastest: {entry['contenders'][key]} {fast_ratio:.2f}× at {_pct(fast_agree)}"
    return goal, measured, ratio >= SPEED_GOAL and agree >= AGREEMENT_GOAL


def goals(results: dict) -> list[tuple[str, str, bool | None]]:
    """(goal, measured, holds) for each goal of the issue that this run measured."""
    rows: list[tuple[str, str, bool | None]] = []
    inference = results.get("inference", {})
    for name, entry in inference.items():
        paired = []
        consistent = True
        for batch, figures in entry["batches"].items():
            ratio = figures["ratio_vs_timm"]["ours"]
            low, high = figures["ratio_vs_timm_range"]["ours"]
            paired.append(f"b{batch} {ratio:.3f}× (rounds {low:.2f}–{high:.2f})")
            consistent = consistent and high >= 0.99  # not slower in every round
        overhead = entry.get("wrapper_overhead")
        b1 = entry["batches"].get("1")
        if overhead and b1:
            share = overhead["overhead_us"] / (1e6 / b1["img_per_s"]["timm"])
            rows.append(
                (
                    f"{name}: ours vs timm eager, overhead ≤ 1%",
                    f"our forward's own cost {overhead['overhead_us']:.0f} µs = {100 * share:.2f}% of a b1 call; "
                    "paired speed ratio " + ", ".join(paired),
                    share <= 0.01 and consistent,
                )
            )
        for batch in entry["batches"]:
            rows.append(auto_goal(name, entry, batch))
    loading = results.get("loading")
    if loading:
        ratio, ready = loading["load_time_ratio"], loading["ready_time_ratio"]
        rows.append(
            (
                "from_pretrained time ≤ 1.2× timm + safetensors",
                f"{ready:.2f}× with every weight read ({ratio:.2f}× for the call alone)",
                max(ratio, ready) <= 1.2,
            )
        )
        over = loading["peak_over_weights"]["ours"]
        rows.append(("from_pretrained peak RSS above baseline ≤ 1.3× weights", f"{over:.2f}×", over <= 1.3))
    for row in (results.get("hub") or {}).get("rows", []):
        operation = str(row.get("operation", ""))
        ratio = row.get("ratio_to_cp")
        if operation.split(" ")[0] in ("push", "pull") and isinstance(ratio, (int, float)):
            measured = f"{ratio:.2f}× ({row.get('mb_per_s', float('nan')):.0f} MB/s)"
            rows.append((f"Hub {operation.split(' ')[0]} ≥ 0.5× cp", measured, ratio >= 0.5))
    return rows


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(_flatten(value, name + "."))
        elif isinstance(value, (int, float, str, bool)):
            rows.append((name, value))
    return rows


def inference_table(name: str, entry: dict) -> list[str]:
    """Markdown rows for one model: throughput, ratio vs timm, agreement."""
    batches = list(entry["batches"])
    agreement = entry["agreement"]
    head = (
        "| path | "
        + " | ".join(f"b{b} img/s | b{b} × timm" for b in batches)
        + " | top-1 agreement | max abs Δ logit |"
    )
    lines = [head, "|---|" + "---:|" * (2 * len(batches) + 2)]
    for key, label in entry["contenders"].items():
        cells = []
        for batch in batches:
            figures = entry["batches"][batch]
            cells += [_rate(figures["img_per_s"][key]), _x(figures["ratio_vs_timm"][key])]
        agree = agreement["top1_agreement"].get(key)
        diff = agreement["max_abs_diff"].get(key)
        if key == "ours":
            agree_cell, diff_cell = "reference", "–"
        elif key in ("timm", "timm_wrapper"):
            agree_cell, diff_cell = "same weights (exact, see below)", "–"
        elif key == "hf_resnet":
            agree_cell, diff_cell = "other weights", "–"
        else:
            agree_cell = _pct(agree) if agree is not None else "–"
            diff_cell = f"{diff:.2g}" if diff is not None else "–"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {agree_cell} | {diff_cell} |")
    return lines


def _seconds(setup: dict, *keys: str) -> str:
    return ", ".join(f"{k} {setup[k]:.1f} s" for k in keys if k in setup)


def fast_path_notes(entry: dict) -> list[str]:
    """What the automatic choice picked and why, what it cost on the first call, and what was left out."""
    facts = entry["facts"]
    notes = []
    choices = facts.get("auto_choice", {})
    for batch, choice in choices.items():
        parity = choice["parity"]
        measured = f"{_pct(parity['agreement'])} top-1 of {parity.get('images', 16)} crops"
        if parity.get("margins"):
            margins = parity["margins"]
            measured += f", top-1 margins p10 / p50 / p90 {margins['p10']:.2g} / {margins['p50']:.2g} / "
            measured += f"{margins['p90']:.2g} of the largest logit"
        notes.append(
            f"Batch {batch}: `optimize_for_inference(model)` chose **{choice['engine']}** ({choice['reason']}; "
            f"{measured}; calibration ratios vs fp32 eager: "
            + ", ".join(f"{k} {v:.2f}×" for k, v in sorted(choice["speedups"].items(), key=lambda kv: -kv[1]))
            + ")."
        )
    if choices:
        setup = next(iter(choices.values()))["setup_s"]
        steps = [k for k in setup if k != "total"]
        notes.append(
            f"First call of the automatic fast path (no cache: export, builds, parity and timing at both batch "
            f"sizes): {facts.get('auto_first_call_s', setup.get('total', 0)):.1f} s ({_seconds(setup, *steps)}); "
            "later calls on this machine read the cached choice and skip the timing."
        )
        left_out = next(iter(choices.values()))["skipped"]
        if left_out:
            notes.append(
                "Left out by the automatic choice: " + "; ".join(f"{k} ({v})" for k, v in left_out.items()) + "."
            )
    if facts.get("engines_skipped"):
        notes.append("Not measured: " + "; ".join(f"{k} ({v})" for k, v in facts["engines_skipped"].items()) + ".")
    setups = facts.get("engine_setup_s", {})
    parity_images = next(iter(choices.values()))["parity"].get("images", 16) if choices else 16
    if setups:
        last = list(setups.values())[-1]
        engines = [k.removeprefix("build ") for k in last if k.startswith("build ")]
        first = {e: last.get(f"build {e}", 0) + last.get(f"parity {e}", 0) for e in engines}
        notes.append(
            f"First call of each engine row ({facts.get('engines_setup_s', 0):.0f} s in all, fp32 eager reference "
            f"included): {_seconds(last, 'ONNX export', 'int8 quantization')} (shared); then build and parity "
            f"check on {parity_images} crops (compilation at batch 8 included): "
            + ", ".join(f"{e} {seconds:.1f} s" for e, seconds in first.items())
            + "."
        )
    firsts = {b: f["first_call_s"] for b, f in entry["batches"].items() if b != "8"}  # 8: in the parity check
    for key in (k for k in entry["contenders"] if "compile" in k):
        calls = ", ".join(f"batch {b} {f[key]:.0f} s" for b, f in firsts.items() if key in f)
        notes.append(f"First call of {entry['contenders'][key]} at another batch size (compilation): {calls}.")
    return notes


SIMD_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)


def cpu_flags_line(machine: dict) -> str:
    """The CPU's vector-arithmetic flags: which it has, which it lacks."""
    flags = set(machine.get("cpu_flags") or [])
    if not flags:
        return "CPU flags: not recorded."
    have = [f for f in SIMD_FLAGS if f in flags]
    lacks = [f for f in SIMD_FLAGS if f not in flags]
    return f"CPU vector flags: {' '.join(have) or 'none'}; lacks {' '.join(lacks) or 'none of them'}."


def render_markdown(results: dict, *, json_path: Path, root: Path) -> str:
    """The whole BENCHMARKS.md."""
    machine = results["machine"]
    settings = results["settings"]
    try:
        json_name = json_path.relative_to(root)
    except ValueError:
        json_name = json_path
    load = machine.get("load_average_at_start")
    load_end = machine.get("load_average_at_end")
    out = [
        "# Benchmarks",
        "",
        f"Command: `.venv/bin/python -m benchmarks.run{' --quick' if settings['quick'] else ''}` "
        f"({results['runtime_s']:.0f} s). Raw figures: `{json_name}`. Date: {results['date']}."
        + "".join(
            f" The {section} figures are from the run of {date} (this run measured only the other sections)."
            for section, date in results.get("earlier_sections", {}).items()
        ),
        "",
        f"Machine: {machine['cpu']}, {machine['logical_cores']} logical cores ({machine['torch_threads']} torch "
        f"threads), Python {machine['python']}, torch {machine['torch']}, timm {machine['timm']}, "
        f"transformers {machine['transformers']}, onnxruntime {machine.get('onnxruntime')}, openvino "
        f"{machine.get('openvino')}; device "
        f"`{machine['device']}`{' (' + machine['gpu'] + ')' if machine.get('gpu') else ''}. "
        f"Load average at start / end: {_loads(load)} / {_loads(load_end)}. {cpu_flags_line(machine)}",
        "",
        "Method: every comparison is a ratio measured in the same run. Contenders are timed in turn within each "
        "round (order rotated every round; one untimed call before each timed set, so each is measured warm), after "
        "warm-up and after compilation for each input shape; a "
        f"ratio is the median over {settings['rounds']} rounds of the per-round ratio, a throughput is the median "
        "over rounds. Top-1 agreement is against our fp32 eager predictions on "
        f"{settings['agreement_images']} real photographs (seeded random-resized crops of the scikit-image and "
        f"scikit-learn sample images, {settings['image_size']}²). No weights are downloaded: models use seeded "
        "random weights with BatchNorm statistics measured on those images, so logits depend on the image; their "
        "top-1 margins are far smaller than a trained network's, which makes agreement a strict test.",
        "",
        "## Goals",
        "",
        "| goal | measured | holds |",
        "|---|---|---|",
    ]
    kinds = other_cpu_kinds(json_path.parent, machine.get("cpu_kind"))
    rows = goals(results) + [
        (f"[{kind}] {goal}", measured, holds) for kind, other in kinds.items() for goal, measured, holds in goals(other)
    ]
    for goal, measured, holds in rows:
        mark = "–" if holds is None else ("yes" if holds else "**no**")
        out.append(f"| {goal} | {measured} | {mark} |")
    inference = results.get("inference")
    if inference:
        out += ["", f"## Inference ({settings['image_size']}², {machine['device']})", ""]
        for name, entry in inference.items():
            facts = entry["facts"]
            out += [f"### {name}", ""]
            out += inference_table(name, entry)
            notes = []
            notes += fast_path_notes(entry)
            if "hf_resnet" in facts:
                notes.append(
                    f"Transformers has no `{name}` counterpart; its {facts['hf_resnet']} is the nearest architecture"
                    + (" (no deep stem or average-pool downsampling)." if name.endswith("d") else ".")
                )
            ours_vs = {b: f["ours_ratio_vs"] for b, f in entry["batches"].items()}
            vs = []
            for key in ("timm_wrapper", "hf_resnet"):
                if key in entry["contenders"]:
                    vs.append(
                        f"vs {entry['contenders'][key]}: " + ", ".join(f"b{b} {_x(r[key])}" for b, r in ours_vs.items())
                    )
            if vs:
                notes.append("Ours eager fp32 speed " + "; ".join(vs) + ".")
            notes.append(
                f"Ours vs timm logits, max abs diff: {entry['agreement']['ours_vs_timm_max_abs_diff']:.1g} "
                f"(TimmWrapper vs timm: {entry['agreement'].get('timm_wrapper_vs_timm_max_abs_diff') or 0:.1g}); "
                f"median top-1 margin of the reference logits: {entry['agreement']['median_top1_margin']:.3f}."
            )
            out += [""] + [f"- {n}" for n in notes] + [""]
    loading = results.get("loading")
    if loading:
        weights = loading["weights_bytes"] / MB
        out += [
            "## Loading (fresh process per load)",
            "",
            f"{loading['model']}, {weights:.0f} MB of safetensors. Ours: `ResnetModelForImageClassification."
            "from_pretrained(dir)`; timm: `timm.create_model(name, pretrained=False)` + `load_state_dict("
            "safetensors.torch.load_file(path))`. Peak RSS: the largest resident set sampled every 2 ms during the "
            "load and the read of every weight, minus the RSS after imports; peak anonymous RSS leaves out pages "
            "mapped from the safetensors file.",
            "",
            "| | load call s | load + read all weights s | imports s | whole process s | peak RSS above baseline | "
            "× weights | "
            "peak anonymous RSS | RSS after load |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for kind, label in (("ours", "ours from_pretrained"), ("timm", "timm create_model + safetensors")):
            out.append(
                f"| {label} | {loading['load_s'][kind]:.2f} | {loading['ready_s'][kind]:.2f} | "
                f"{loading['imports_s'][kind]:.1f} | "
                f"{loading['process_s'][kind]:.1f} | {loading['peak_above_baseline'][kind] / MB:.0f} MB | "
                f"{loading['peak_over_weights'][kind]:.2f}× | "
                f"{loading.get('anon_peak_above_baseline', {}).get(kind, 0) / MB:.0f} MB | "
                f"{loading['rss_after_above_baseline'][kind] / MB:.0f} MB |"
            )
        out += [
            "",
            f"Time ratio ours / timm (median of paired rounds): load call {loading['load_time_ratio']:.2f}×, "
            f"load + read {loading['ready_time_ratio']:.2f}×.",
            "",
        ]
    training = results.get("training")
    if training:
        size = "×".join(str(s) for s in training["image_size"])
        out += [
            "## Training step (forward + backward + SGD)",
            "",
            f"{training['model']}, batch {training['batch']}, {size}; ours computes the loss from `labels=`."
            + (
                f" Re-measured alone ({training['remeasured']['date']}): {training['remeasured']['why']}."
                if training.get("remeasured")
                else ""
            ),
            "",
            "| loop | img/s | × timm |",
            "|---|---:|---:|",
            f"| timm + cross_entropy | {_rate(training['img_per_s']['timm'])} | 1.00× |",
            f"| ours (`labels=`) | {_rate(training['img_per_s']['ours'])} | {_x(training['ratio_ours_vs_timm'])} |",
            "",
        ]
    hub = results.get("hub")
    if hub:
        out += ["## Hub push / pull", ""]
        if "skipped" in hub or "error" in hub:
            out += [f"Not measured: {hub.get('skipped') or hub.get('error')}", ""]
        elif "rows" in hub:
            size = hub.get("file_bytes", 0) / MB
            out += [
                f"`benchmarks/hub_transfer.py`: one {size:.0f} MB safetensors file pushed with `HfApi.upload_file` and "
                "pulled with `hf_hub_download` through the local Hub server, against `cp` on the same disk. "
                f"Median of {hub.get('runs', 1)} runs.",
                "",
                "| operation | s | MB/s | × cp | × cp+fsync |",
                "|---|---:|---:|---:|---:|",
            ]
            for row in hub["rows"]:
                fsync = row.get("ratio_to_cp_fsync")
                fsync_cell = f"{fsync:.2f}×" if isinstance(fsync, (int, float)) else "–"
                out.append(
                    f"| {row['operation']} | {row['seconds']:.2f} | {row['mb_per_s']:.0f} | "
                    f"{row['ratio_to_cp']:.2f}× | {fsync_cell} |"
                )
            out += [""]
        else:
            out += ["| figure | value |", "|---|---:|"]
            out += [f"| {k} | {v:.3g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in _flatten(hub)]
            out += [""]
    for kind, other in kinds.items():
        out += other_kind_section(kind, other)
    out += _marked_sections(root / "BENCHMARKS.md") + _explanations(results)
    return "\n".join(out).rstrip() + "\n"


def other_cpu_kinds(folder: Path, current: str | None) -> dict[str, dict]:
    """The inference results kept for the other CPU kinds (`inference-<kind>.json` beside the results)."""
    found = {}
    for path in sorted(folder.glob("inference-*.json")):
        kind = path.stem.removeprefix("inference-")
        if kind != current:
            found[kind] = json.loads(path.read_text(encoding="utf-8"))
    return found


def other_kind_section(kind: str, results: dict) -> list[str]:
    """The inference tables measured on a machine of another CPU kind, with that machine's description."""
    machine = results["machine"]
    out = [
        "",
        f"## Inference on {kind} ({results['settings']['image_size']}², {machine['device']}, {results['date']})",
        "",
        f"Machine: {machine['cpu']}, {machine['logical_cores']} logical cores. Load average at start: "
        f"{_loads(machine.get('load_average_at_start'))}. {cpu_flags_line(machine)}"
        + (f" Note: {results['note']}." if results.get("note") else ""),
        "",
    ]
    for name, entry in results["inference"].items():
        out += [f"### {name} ({kind})", ""] + inference_table(name, entry) + [""]
        out += [f"- {note}" for note in fast_path_notes(entry)] + [""]
    return out


def _marked_sections(path: Path) -> list[str]:
    """Sections other benchmarks write into BENCHMARKS.md between ``<!-- name:start -->`` and ``<!-- name:end -->``
    (``benchmarks/hub_xet.py``): carried over unchanged when the file is regenerated."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return [f"{m.group(0)}\n" for m in re.finditer(r"<!-- ([\w-]+):start -->.*?<!-- \1:end -->", text, re.S)]


def _loads(values: list | None) -> str:
    return "n/a" if not values else ", ".join(f"{v:.1f}" for v in values)


def _explanations(results: dict) -> list[str]:
    path = Path(__file__).with_name("NOTES.md")
    return ["", path.read_text(encoding="utf-8").strip(), ""] if path.exists() else []


def render_terminal(results: dict) -> str:
    """A compact plain-text summary: throughput table per model and the goals."""
    lines = []
    for name, entry in results.get("inference", {}).items():
        lines.append(f"\n{name}")
        batches = list(entry["batches"])
        lines.append(f"  {'path':<48}" + "".join(f"{'b' + b + ' img/s':>12}{'×timm':>8}" for b in batches) + "   agree")
        for key, label in entry["contenders"].items():
            row = f"  {label:<48}"
            for batch in batches:
                figures = entry["batches"][batch]
                row += f"{_rate(figures['img_per_s'][key]):>12}{figures['ratio_vs_timm'][key]:>7.2f}×"
            agree = entry["agreement"]["top1_agreement"].get(key)
            row += f"  {_pct(agree) if agree is not None else '':>7}"
            lines.append(row)
    lines.append("\ngoals:")
    for goal, measured, holds in goals(results):
        mark = "  - " if holds is None else ("  ok" if holds else "  NO")
        lines.append(f"{mark} {goal}: {measured}")
    return "\n".join(lines)
