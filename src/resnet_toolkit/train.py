"""Fine-tuning with `transformers.Trainer`: metrics JSON, loss/accuracy curves and a confusion matrix."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._files import atomic_dir
from .card import MODEL_CARD
from .errors import UserError

# A small custom ResNet for 8×8 digits upscaled to 32×32: basic blocks, one per stage, a narrow deep stem.
TINY_VARIANT = {"block_type": "basic", "layers": [1, 1, 1, 1], "stem_type": "deep", "stem_width": 16}
VARIANT_HELP = "'tiny', a timm ResNet name (e.g. resnet18), a config .json file, or a saved model folder"


@dataclass
class TrainResult:
    """What a training run produced."""

    out: Path
    model_dir: Path
    metrics: dict


def build_model(variant: str, class_names: list[str], channels: int):
    """A fresh (or fine-tuned from a folder) classifier for `class_names` and `channels` input channels."""
    from resnet_model import TIMM_PRESETS, ResnetConfig, ResnetModelForImageClassification

    labels = {"id2label": dict(enumerate(class_names)), "label2id": {name: i for i, name in enumerate(class_names)}}
    path = Path(variant)
    if path.is_dir():
        try:
            config = ResnetConfig.from_pretrained(path)
        except (OSError, ValueError) as error:
            raise UserError(f"--variant {variant}: not a saved model folder ({str(error).splitlines()[0]})") from None
        if config.input_channels != channels:
            raise UserError(
                f"--variant {variant} takes {config.input_channels} input channel(s); the data has {channels}"
            )
        return ResnetModelForImageClassification.from_pretrained(
            path, ignore_mismatched_sizes=config.num_classes != len(class_names), **labels
        )
    try:
        if variant == "tiny":
            config = ResnetConfig(**TINY_VARIANT, input_channels=channels, **labels)
        elif variant.split(".", 1)[0] in TIMM_PRESETS:
            config = ResnetConfig.from_timm(variant, input_channels=channels, **labels)
        elif path.suffix == ".json":
            if not path.is_file():
                raise UserError(f"--variant config file not found: {variant}")
            fields = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(fields, dict):
                raise UserError(f"--variant {variant}: expected a JSON object of config fields")
            for key in ("num_classes", "num_labels", "id2label", "label2id", "input_channels"):
                fields.pop(key, None)
            config = ResnetConfig(**fields, input_channels=channels, **labels)
        else:
            raise UserError(f"unknown --variant {variant!r}; allowed: {VARIANT_HELP} ({', '.join(TIMM_PRESETS)})")
    except (TypeError, ValueError, json.JSONDecodeError) as error:
        raise UserError(f"--variant {variant}: {error}") from None
    return ResnetModelForImageClassification(config)


def _plot(history: list[dict], confusion: np.ndarray, class_names: list[str], out: Path) -> list[Path]:
    """Write loss/accuracy curves and the confusion matrix as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    train = [(h["epoch"], h["loss"]) for h in history if "loss" in h]
    evals = [h for h in history if "eval_loss" in h]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    if train:
        ax_loss.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        ax_loss.plot([h["epoch"] for h in evals], [h["eval_loss"] for h in evals], "o-", label="test loss")
        ax_acc.plot([h["epoch"] for h in evals], [h["eval_accuracy"] for h in evals], "o-", color="tab:green")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_loss.legend()
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="held-out accuracy", ylim=(0, 1.02))
    ax_acc.grid(alpha=0.3)
    fig.tight_layout()
    curves = out / "loss_accuracy.png"
    fig.savefig(curves, dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 6))
    ConfusionMatrixDisplay(confusion, display_labels=class_names).plot(ax=ax, colorbar=False)
    ax.set_title("confusion matrix (held-out set)")
    fig.tight_layout()
    matrix = out / "confusion_matrix.png"
    fig.savefig(matrix, dpi=100)
    plt.close(fig)
    return [curves, matrix]


def train(
    data: str,
    variant: str,
    epochs: float,
    out: str | os.PathLike,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    image_size: int | None = None,
    test_size: float = 0.2,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train `variant` on `data` ('digits' or an image folder); write `out/model`, metrics and plots."""
    from sklearn.metrics import confusion_matrix
    from transformers import Trainer, TrainingArguments, set_seed

    from .data import DIGITS_DATA_CONFIG, TensorDataset, load_digits_set, load_image_folder, to_tensors
    from .processing import data_config_for, image_processor_from_data_config, save_image_processor

    if epochs <= 0:
        raise UserError(f"--epochs must be > 0, got {epochs}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    if not 0 < test_size < 1:
        raise UserError(f"--test-size must be in (0, 1), got {test_size}")
    if image_size is not None and image_size < 8:
        raise UserError(f"--image-size must be >= 8, got {image_size}")
    set_seed(seed)
    started = time.perf_counter()
    if data == "digits":
        dataset = load_digits_set(test_size, seed)
        data_config = dict(DIGITS_DATA_CONFIG)
    else:
        channels = 3
        if Path(variant).suffix == ".json" and Path(variant).is_file():
            channels = json.loads(Path(variant).read_text(encoding="utf-8")).get("input_channels", 3)
        elif Path(variant).is_dir() and (Path(variant) / "config.json").is_file():
            channels = json.loads((Path(variant) / "config.json").read_text(encoding="utf-8")).get("input_channels", 3)
        dataset = load_image_folder(data, channels, test_size, seed)
        data_config = None
    model = build_model(variant, dataset.class_names, dataset.channels)
    if data_config is None:
        data_config = data_config_for(model.config)
    if image_size is not None:
        data_config["input_size"] = [dataset.channels, image_size, image_size]
        data_config["crop_pct"] = 1.0
    processor = image_processor_from_data_config(data_config)
    train_set = TensorDataset(to_tensors(dataset.train_images, processor), dataset.train_labels)
    test_set = TensorDataset(to_tensors(dataset.test_images, processor), dataset.test_labels)
    n_params = sum(p.numel() for p in model.parameters())
    log(
        f"data: {data} ({len(train_set)} train / {len(test_set)} test images, {len(dataset.class_names)} classes, "
        f"input {tuple(data_config['input_size'])}); model: {variant} ({n_params:,} parameters)"
    )

    def accuracy(prediction) -> dict:
        return {"accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())}

    with atomic_dir(out, overwrite=overwrite) as tmp:
        args = TrainingArguments(
            output_dir=str(tmp / ".trainer"),
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=256,
            learning_rate=learning_rate,
            weight_decay=0.01,
            lr_scheduler_type="cosine",
            warmup_steps=0.05,
            eval_strategy="epoch",
            logging_strategy="steps",
            logging_steps=5,
            save_strategy="no",
            report_to="none",
            seed=seed,
            use_cpu=True,
            dataloader_num_workers=0,
            disable_tqdm=not progress,
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=train_set, eval_dataset=test_set, compute_metrics=accuracy
        )
        trainer.train()
        prediction = trainer.predict(test_set)
        predicted = np.argmax(prediction.predictions, -1)
        confusion = confusion_matrix(dataset.test_labels, predicted, labels=list(range(len(dataset.class_names))))
        test_accuracy = float((predicted == np.array(dataset.test_labels)).mean())
        model_dir = tmp / "model"
        trainer.model.eval()
        trainer.model.save_pretrained(model_dir)
        save_image_processor(model.config, model_dir, **data_config)
        card = MODEL_CARD.format(
            title=Path(out).name,
            description=f"A `{variant}` ResNet trained on `{data}`: held-out accuracy {test_accuracy:.4f}.",
        )
        (model_dir / "README.md").write_text(card, encoding="utf-8")
        shutil.rmtree(tmp / ".trainer", ignore_errors=True)
        metrics = {
            "data": data,
            "variant": variant,
            "epochs": epochs,
            "seed": seed,
            "train_size": len(train_set),
            "test_size": len(test_set),
            "class_names": dataset.class_names,
            "data_config": data_config,
            "parameters": n_params,
            "test_accuracy": test_accuracy,
            "test_loss": float(prediction.metrics["test_loss"]),
            "test_predictions": predicted.tolist(),
            "confusion_matrix": confusion.tolist(),
            "history": trainer.state.log_history,
            "train_seconds": round(time.perf_counter() - started, 2),
        }
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        _plot(trainer.state.log_history, confusion, dataset.class_names, tmp)
    out = Path(out)
    log(f"held-out accuracy: {test_accuracy:.4f} ({len(test_set)} images); wrote {out}/model, metrics.json and plots")
    return TrainResult(out=out, model_dir=out / "model", metrics=metrics)
