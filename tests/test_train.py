"""`resnet-model train` on an image folder: outputs written, and the saved model reproduces the reported metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from transformers import AutoImageProcessor

from resnet_model import ResnetModelForImageClassification
from resnet_toolkit.cli import main
from resnet_toolkit.data import load_image_folder


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """`resnet-model ARGS` in-process and offline: (exit status, stdout, stderr)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def run(*args: str) -> tuple[int, str, str]:
        status = main(list(args))
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def make_folder(root: Path, classes=(0, 1, 2), per_class: int = 12) -> Path:
    """Real digits images as PNG files, one sub-folder per class."""
    digits = load_digits()
    for digit in classes:
        folder = root / f"digit-{digit}"
        folder.mkdir(parents=True)
        images = digits.images[digits.target == digit][:per_class]
        for index, image in enumerate(images):
            Image.fromarray((image * 255 / 16).astype(np.uint8), mode="L").convert("RGB").save(folder / f"{index}.png")
    return root


def test_train_on_a_folder_writes_model_metrics_and_plots(run_cli, tmp_path: Path) -> None:
    data = make_folder(tmp_path / "data")
    variant = tmp_path / "variant.json"
    variant.write_text(
        json.dumps({"block_type": "basic", "layers": [1, 1, 1, 1], "stem_type": "deep", "stem_width": 8})
    )
    out = tmp_path / "run"
    status, stdout, err = run_cli(
        "train",
        "--data",
        str(data),
        "--variant",
        str(variant),
        "--epochs",
        "2",
        "--out",
        str(out),
        "--image-size",
        "16",
        "--batch-size",
        "8",
        "--test-size",
        "0.25",
    )
    assert status == 0, err[-3000:]
    assert "held-out accuracy" in stdout
    for name in (
        "metrics.json",
        "loss_accuracy.png",
        "confusion_matrix.png",
        "model/config.json",
        "model/model.safetensors",
        "model/preprocessor_config.json",
        "model/modeling_resnet.py",
    ):
        assert (out / name).is_file(), name
    assert (out / "loss_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == ["digit-0", "digit-1", "digit-2"]
    assert metrics["train_size"] == 27 and metrics["test_size"] == 9
    assert any("eval_accuracy" in h for h in metrics["history"]) and any("loss" in h for h in metrics["history"])
    assert np.array(metrics["confusion_matrix"]).sum() == 9
    card = (out / "model" / "README.md").read_text()
    assert "REPO_ID" not in card and "# variant.json ResNet trained on data" in card
    assert f"{metrics['test_accuracy']:.4f}" in card

    # the saved model + its saved processor reproduce the reported predictions on the same held-out split
    model = ResnetModelForImageClassification.from_pretrained(out / "model").eval()
    processor = AutoImageProcessor.from_pretrained(out / "model")
    assert model.config.id2label[2] == "digit-2"
    split = load_image_folder(str(data), channels=3, test_size=0.25, seed=0)
    with torch.no_grad():
        logits = model(pixel_values=processor(split.test_images, return_tensors="pt")["pixel_values"]).logits
    assert logits.argmax(-1).tolist() == metrics["test_predictions"]
    accuracy = float((logits.argmax(-1) == torch.tensor(split.test_labels)).double().mean())
    assert abs(accuracy - metrics["test_accuracy"]) < 1e-9


def test_train_user_errors(run_cli, tmp_path: Path) -> None:
    data = make_folder(tmp_path / "one", classes=(4,))
    status, _, err = run_cli(
        "train", "--data", str(data), "--variant", "tiny", "--epochs", "1", "--out", str(tmp_path / "o")
    )
    assert status == 2 and "at least 2 class" in err and len(err.strip().splitlines()) == 1
    status, _, err = run_cli(
        "train", "--data", "digits", "--variant", "resnet9000", "--epochs", "1", "--out", str(tmp_path / "o")
    )
    assert status == 2 and "--variant" in err and "resnet18" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_one_epoch_on_digits_learns_or_says_why(run_cli, tmp_path: Path) -> None:
    status, out, err = run_cli("train", "--data", "digits", "--epochs", "1", "--out", str(tmp_path / "o"))
    assert status == 0, err[-3000:]
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.5 or "near chance" in out, out
    assert "{'loss'" not in out + err and "'eval_accuracy'" not in out + err  # no Trainer log dicts
