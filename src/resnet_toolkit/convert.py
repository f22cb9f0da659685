"""Turn a timm ResNet (pretrained, local checkpoint or random) into a ready-to-push Transformers folder."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ._files import atomic_dir, check_output_dir
from .card import write_card
from .errors import CheckFailed, UserError
from .parity import ParityReport, compare


def read_labels(path: str | os.PathLike) -> list[str]:
    """Class names from a file: a JSON list, a JSON `{index: name}` object, or one name per line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--labels file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(data, dict):
        try:
            items = sorted((int(k), str(v)) for k, v in data.items())
        except ValueError:
            raise UserError(f"--labels {path}: JSON object keys must be class indices 0..N-1.") from None
        if [i for i, _ in items] != list(range(len(items))):
            raise UserError(f"--labels {path}: JSON object keys must be class indices 0..N-1.")
        data = [name for _, name in items]
    if not isinstance(data, list) or not data or not all(isinstance(x, (str, int)) for x in data):
        raise UserError(f"--labels {path}: expected a JSON list of names or one name per line.")
    labels = [str(x) for x in data]
    if len(set(labels)) != len(labels):
        raise UserError(f"--labels {path}: class names must be unique.")
    return labels


def label_fields(labels: list[str] | None, num_classes: int | None) -> dict:
    """Config fields for the classifier head, checking that `num_classes` and `labels` agree."""
    if labels is not None:
        if num_classes is not None and num_classes != len(labels):
            raise UserError(f"--num-classes {num_classes} disagrees with --labels, which names {len(labels)} classes.")
        return {"id2label": dict(enumerate(labels))}
    if num_classes is not None:
        if num_classes < 1:
            raise UserError(f"--num-classes must be >= 1, got {num_classes}.")
        return {"num_classes": num_classes}
    return {}


def check_inputs(name: str, checkpoint: str | None, random_init: bool) -> None:
    """Refuse an unknown variant, a missing checkpoint or contradictory flags before any model is built."""
    from resnet_model import TIMM_PRESETS

    if name.split(".", 1)[0] not in TIMM_PRESETS:
        raise UserError(f"unknown TIMM_NAME {name!r}; allowed: {', '.join(TIMM_PRESETS)}")
    if checkpoint is not None and random_init:
        raise UserError("--checkpoint and --random-init exclude each other; pass one.")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise UserError(f"--checkpoint file not found: {checkpoint}")


def create_timm_model(name: str, checkpoint: str | None, random_init: bool, num_classes: int | None):  # -> timm ResNet
    """timm's own model: weights from `checkpoint`, from timm's pretrained source, or random."""
    import timm

    check_inputs(name, checkpoint, random_init)
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    if checkpoint is not None:
        return _timm_from_checkpoint(name, checkpoint, num_classes)
    if random_init:
        return timm.create_model(name, pretrained=False, **kwargs)
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as error:  # network, missing weights: timm raises many kinds
        raise UserError(
            f"could not fetch timm's pretrained weights for {name!r} ({type(error).__name__}); "
            "pass --checkpoint FILE or --random-init"
        ) from None


def _timm_from_checkpoint(name: str, checkpoint: str, num_classes: int | None):
    """timm `name` with the weights of a local file; the classifier is re-initialised if `num_classes` differs."""
    import timm

    try:
        state_dict = timm.models.load_state_dict(str(checkpoint), weights_only=True)
    except Exception as error:  # safetensors and torch raise different types for unreadable files
        raise UserError(f"--checkpoint {checkpoint} is not a readable safetensors or torch file ({error})") from None
    head = state_dict.get("fc.weight")
    saved_classes = int(head.shape[0]) if head is not None else None
    model = timm.create_model(name, pretrained=False, num_classes=num_classes or saved_classes or 1000)
    if num_classes is not None and num_classes != saved_classes:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    own = model.state_dict()
    missing = sorted(
        k for k in set(own) - set(state_dict) if not (k.startswith("fc.") and saved_classes != num_classes)
    )
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(k for k in set(own) & set(state_dict) if own[k].shape != state_dict[k].shape)
    if missing or unexpected or mismatched:
        parts = [
            f"{title}: {', '.join(keys[:4])}{' …' if len(keys) > 4 else ''} ({len(keys)})"
            for title, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched))
            if keys
        ]
        raise UserError(f"--checkpoint {checkpoint} does not fit timm {name!r}: {'; '.join(parts)}")
    model.load_state_dict(state_dict, strict=False)
    return model


def convert(
    name: str,
    *,
    out: str | os.PathLike,
    checkpoint: str | None = None,
    random_init: bool = False,
    num_classes: int | None = None,
    labels: list[str] | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> ParityReport:
    """Write a Transformers folder (config, safetensors, image processor, code, card) for timm `name` into `out`.

    Every input is checked before a model is built; the folder appears only once the saved weights reload with
    parity. A head of ImageNet's size without `labels` gets timm's ImageNet class names.
    """
    from resnet_model import ResnetModelForImageClassification

    check_output_dir(out, overwrite)
    fields = label_fields(labels, num_classes)
    timm_model = create_timm_model(name, checkpoint, random_init, len(labels) if labels else num_classes).eval()
    source = "random init" if random_init else (f"checkpoint {checkpoint}" if checkpoint else "timm pretrained")
    log(f"loaded timm {name!r} ({source}, {sum(p.numel() for p in timm_model.parameters()):,} parameters)")
    model = ResnetModelForImageClassification.from_timm(timm_model, **fields)
    report = compare(model, timm_model, name)
    for line in report.lines():
        log(line)
    if not report.ok:
        raise CheckFailed(f"converted model differs from timm {name!r}; nothing written.")
    with atomic_dir(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
        write_card(
            tmp,
            f"timm {name} as a Transformers custom-code model",
            _card_description(name, source, model.config.id2label),
            folder_name=Path(out).name,
        )
        saved = compare(ResnetModelForImageClassification.from_pretrained(tmp).eval(), timm_model, name)
        if not saved.ok:
            raise CheckFailed(f"the saved folder differs from timm {name!r}; nothing written.")
    log(f"saved weights reload with parity OK (max |diff| {max(saved.diffs.values()):.1e})")
    log(f"wrote {out}: {', '.join(sorted(p.name for p in Path(out).iterdir()))}")
    return report


def _card_description(name: str, source: str, id2label: dict[int, str]) -> str:
    """What the card says about a converted model."""
    classes = ", ".join(id2label[i] for i in range(min(3, len(id2label))))
    return (
        f"timm's `{name}` ({source}), converted with `resnet-model convert`: the same numbers as timm "
        f"(parity checked on conversion and after reload), {len(id2label)} classes ({classes}, ...)."
    )
