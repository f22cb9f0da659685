"""Fine-tuning with `transformers.Trainer`: metrics JSON, loss/accuracy curves and a confusion matrix."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._files import atomic_dir, check_output_dir
from .card import write_card
from .errors import UserError
from .progress import epoch_callback, library_output

if TYPE_CHECKING:
    from .data import ImageSet

# A small custom ResNet for 8×8 digits upscaled to 32×32: basic blocks, one per stage, a narrow deep stem.
TINY_VARIANT = {"block_type": "basic", "layers": [1, 1, 1, 1], "stem_type": "deep", "stem_width": 16}
VARIANT_HELP = "'tiny', a timm ResNet name (e.g. resnet18), a config .json file, or a saved model folder"
DEFAULT_OUT = "train-output"
DEFAULTS = {"batch_size": 32, "learning_rate": 2e-3, "warmup": 0.05, "test_size": 0.2}


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
    *,
    epochs: float,
    out: str | os.PathLike,
    batch_size: int = DEFAULTS["batch_size"],
    learning_rate: float = DEFAULTS["learning_rate"],
    warmup: float = DEFAULTS["warmup"],
    image_size: int | None = None,
    test_size: float = DEFAULTS["test_size"],
    seed: int = 0,
    overwrite: bool = False,
    verbose: bool = False,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train `variant` on `data` ('digits' or an image folder); write `out/model` (with its card), metrics and plots.

    BatchNorm statistics are recomputed over the training set after every epoch (`update_bn`), so held-out
    accuracy is meaningful even after a few optimiser steps. Prints why when the accuracy stays near chance.
    """
    from transformers import set_seed

    _check_arguments(epochs, batch_size, test_size, image_size, warmup)
    check_output_dir(out, overwrite)
    set_seed(seed)
    started = time.perf_counter()
    run = _prepare(data, variant, test_size, seed, image_size)
    log(run.describe(data, variant))
    settings = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "warmup": warmup}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        trainer = _trainer(run.model, run.train_set, run.test_set, tmp / ".trainer", settings, seed, verbose)
        with library_output(verbose):
            trainer.train()
            result = _evaluate(trainer, run.test_set, run.class_names)
            trainer.model.eval()
            trainer.model.save_pretrained(tmp / "model")
        shutil.rmtree(tmp / ".trainer", ignore_errors=True)
        metrics = {
            "data": data,
            "variant": variant,
            **settings,
            "seed": seed,
            **run.record(),
            **result,
            "optimizer_steps": trainer.state.global_step,
            "history": trainer.state.log_history,
            "train_seconds": round(time.perf_counter() - started, 2),
        }
        _write_card(tmp / "model", data, variant, metrics)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        _plot(trainer.state.log_history, np.array(metrics["confusion_matrix"]), run.class_names, tmp)
    out = Path(out)
    log(
        f"held-out accuracy: {metrics['test_accuracy']:.4f} ({len(run.test_set)} images); "
        f"wrote {out}/model, metrics.json and plots"
    )
    _explain_low_accuracy(metrics, log)
    return TrainResult(out=out, model_dir=out / "model", metrics=metrics)


@dataclass
class _Prepared:
    """A model ready to train and its data, as tensors through the model's image processor."""

    model: Any
    train_set: Any
    test_set: Any
    class_names: list[str]
    data_config: dict

    @property
    def parameters(self) -> int:
        """The model's parameter count."""
        return sum(p.numel() for p in self.model.parameters())

    def describe(self, data: str, variant: str) -> str:
        """One line on the data and the model."""
        return (
            f"data: {data} ({len(self.train_set)} train / {len(self.test_set)} test images, "
            f"{len(self.class_names)} classes, input {tuple(self.data_config['input_size'])}); "
            f"model: {variant} ({self.parameters:,} parameters)"
        )

    def record(self) -> dict:
        """What `metrics.json` says about the data and the model."""
        return {
            "train_size": len(self.train_set),
            "test_size": len(self.test_set),
            "class_names": self.class_names,
            "data_config": self.data_config,
            "parameters": self.parameters,
        }


def _prepare(data: str, variant: str, test_size: float, seed: int, image_size: int | None) -> _Prepared:
    """Load and split the data, build the model, and preprocess the images with the model's data config."""
    from .data import TensorDataset, to_tensors
    from .processing import image_processor_from_data_config

    dataset, data_config = _load_data(data, variant, test_size, seed)
    model = build_model(variant, dataset.class_names, dataset.channels)
    data_config = _data_config(data_config, model, dataset.channels, image_size)
    model.config.pretrained_cfg = data_config  # saved with the model: config.json + preprocessor_config.json
    processor = image_processor_from_data_config(data_config)
    return _Prepared(
        model=model,
        train_set=TensorDataset(to_tensors(dataset.train_images, processor), dataset.train_labels),
        test_set=TensorDataset(to_tensors(dataset.test_images, processor), dataset.test_labels),
        class_names=dataset.class_names,
        data_config=data_config,
    )


def _check_arguments(epochs: float, batch_size: int, test_size: float, image_size: int | None, warmup: float) -> None:
    """Refuse out-of-range numbers, naming the flag and the allowed range."""
    if epochs <= 0:
        raise UserError(f"--epochs must be > 0, got {epochs}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    if not 0 < test_size < 1:
        raise UserError(f"--test-size must be in (0, 1), got {test_size}")
    if image_size is not None and image_size < 8:
        raise UserError(f"--image-size must be >= 8, got {image_size}")
    if warmup < 0 or (warmup >= 1 and warmup != int(warmup)):
        raise UserError(f"--warmup must be a fraction in [0, 1) or a whole number of steps, got {warmup}")


def _load_data(data: str, variant: str, test_size: float, seed: int) -> tuple[ImageSet, dict | None]:
    """The split dataset, and its data config when the dataset fixes one (digits)."""
    from .data import DIGITS_DATA_CONFIG, load_digits_set, load_image_folder

    if data == "digits":
        return load_digits_set(test_size, seed), dict(DIGITS_DATA_CONFIG)
    channels = 3
    path = Path(variant)
    config_file = path if path.suffix == ".json" else path / "config.json"
    if config_file.is_file():
        channels = json.loads(config_file.read_text(encoding="utf-8")).get("input_channels", 3)
    return load_image_folder(data, channels, test_size, seed), None


def _data_config(data_config: dict | None, model, channels: int, image_size: int | None) -> dict:
    """timm's data config for the model (unless the data fixed one), resized to `image_size` if given."""
    from .processing import data_config_for

    data_config = data_config if data_config is not None else data_config_for(model.config)
    if image_size is not None:
        data_config["input_size"] = [channels, image_size, image_size]
        data_config["crop_pct"] = 1.0
    return data_config


def _trainer(model, train_set, test_set, output_dir: Path, settings: dict, seed: int, verbose: bool):
    """A `Trainer` evaluating every epoch; its own bars and log lines only when `verbose`."""
    from transformers import PrinterCallback, ProgressCallback, Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=settings["epochs"],
        per_device_train_batch_size=settings["batch_size"],
        per_device_eval_batch_size=256,
        learning_rate=settings["learning_rate"],
        weight_decay=0.01,
        lr_scheduler_type="cosine",
        warmup_steps=settings["warmup"],
        eval_strategy="epoch",
        logging_strategy="steps",
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        seed=seed,
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=not verbose,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=test_set,
        compute_metrics=_accuracy,
        callbacks=[batchnorm_callback(train_set)],
    )
    if not verbose:
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(epoch_callback(settings["epochs"]))
    return trainer


def _accuracy(prediction) -> dict:
    return {"accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())}


def _evaluate(trainer, test_set, class_names: list[str]) -> dict:
    """Held-out accuracy, loss, predictions and confusion matrix of the trained model."""
    from sklearn.metrics import confusion_matrix

    prediction = trainer.predict(test_set)
    predicted = np.argmax(prediction.predictions, -1)
    labels = test_set.labels.numpy()
    return {
        "test_accuracy": float((predicted == labels).mean()),
        "test_loss": float(prediction.metrics["test_loss"]),
        "test_predictions": predicted.tolist(),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=list(range(len(class_names)))).tolist(),
    }


def batchnorm_callback(train_set) -> Any:
    """A `TrainerCallback` that recomputes BatchNorm's running statistics over `train_set` at each epoch's end.

    The running averages lag behind weights that change fast (high learning rate, few steps); recomputing them
    with the final weights of the epoch ("precise BN") makes evaluation match training.
    """
    import torch
    from torch.optim.swa_utils import update_bn
    from transformers import TrainerCallback

    class PreciseBatchNorm(TrainerCallback):
        def on_epoch_end(self, args, state, control, model=None, **kwargs) -> None:
            batches = [train_set.pixel_values[i : i + 256] for i in range(0, len(train_set), 256)]
            with torch.no_grad():
                update_bn(batches, model)

    return PreciseBatchNorm()


def _write_card(model_dir: Path, data: str, variant: str, metrics: dict) -> None:
    """The model card: what was trained on what, its held-out accuracy and how to load it."""
    source = "scikit-learn's bundled digits (8x8 images upscaled to 32x32)" if data == "digits" else f"`{data}`"
    write_card(
        model_dir,
        f"{Path(variant).name} ResNet trained on {Path(data).name}",
        f"A `{Path(variant).name}` ResNet trained with `resnet-model train` for {metrics['epochs']:g} epoch(s) "
        f"on {source}: "
        f"{metrics['train_size']} training and {metrics['test_size']} held-out images, "
        f"{len(metrics['class_names'])} classes. Held-out accuracy {metrics['test_accuracy']:.4f}.",
        folder_name="model",
        metrics={"accuracy": round(metrics["test_accuracy"], 4)},
        dataset=Path(data).name,
    )


def _explain_low_accuracy(metrics: dict, log: Callable[[str], None]) -> None:
    """Say why, when the held-out accuracy is close to chance."""
    chance = 1 / len(metrics["class_names"])
    if metrics["test_accuracy"] >= min(0.5, 2 * chance):
        return
    first = next((h["loss"] for h in metrics["history"] if "loss" in h), None)
    last = next((h["loss"] for h in reversed(metrics["history"]) if "loss" in h), None)
    trend = f"training loss {first:.2f} -> {last:.2f}; " if first is not None and last is not None else ""
    log(
        f"warning: held-out accuracy {metrics['test_accuracy']:.2f} is near chance ({chance:.2f}): {trend}"
        f"{metrics['optimizer_steps']} optimiser steps ({metrics['epochs']:g} epoch(s) of "
        f"{metrics['train_size']} images at batch size {metrics['batch_size']}) are too few for this model; "
        "train for more --epochs or use a smaller --batch-size"
    )
