"""`resnet-model` as a user runs it: help with examples, one-line argument errors, convert and verify against timm.

Everything runs in-process through `main(argv)`; `test_the_console_script_runs` checks the installed script once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from resnet_model import ResnetModelForImageClassification
from resnet_toolkit.cli import COMMANDS, main

CLI = str(Path(sys.executable).with_name("resnet-model"))


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No command here talks to a Hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("RESNET_MODEL_DEBUG", raising=False)


def run(capsys, *args: str) -> tuple[int, str, str]:
    """`resnet-model ARGS` in-process: (exit status, stdout, stderr)."""
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_user_error(result: tuple[int, str, str], *fragments: str) -> str:
    """Exit status 2 and exactly one line on stderr, naming what was wrong; returns that line."""
    status, out, err = result
    assert status == 2, (status, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_the_console_script_runs() -> None:
    proc = subprocess.run([CLI, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in COMMANDS:
        assert command in proc.stdout


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "hub"])
def test_every_command_has_help_with_examples(capsys, command: str) -> None:
    status, out, _ = run(capsys, command, "--help")
    assert status == 0
    assert out.startswith("usage: resnet-model " + command)
    assert f"examples:\n  resnet-model {command}" in out


def test_the_hub_is_a_group_of_this_command(capsys) -> None:
    pytest.importorskip("hub_server")
    status, out, _ = run(capsys, "hub", "serve", "--help")
    assert status == 0 and out.startswith("usage: resnet-model hub serve"), out
    status, out, _ = run(capsys, "hub", "--help")
    assert status == 0 and "add-user" in out and out.startswith("usage: resnet-model hub")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ((), ["required: COMMAND"]),
        (("frobnicate",), ["invalid choice", "frobnicate"]),
        (("convert", "resnet18"), ["--out"]),
        (("convert", "resnet18", "--out", "x", "--num-classes", "0"), ["--num-classes", "positive integer"]),
        (("train", "--data", "digits", "--variant", "tiny", "--epochs", "-1", "--out", "x"), ["--epochs"]),
        (("train", "--data", "digits", "--variant", "tiny", "--epochs", "1", "--out", "x", "--lr", "0"), ["--lr"]),
        (("predict", "some/repo"), ["IMAGE"]),
        (("push", "folder"), ["REPO"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, args: tuple[str, ...], fragments: list[str]) -> None:
    assert_user_error(run(capsys, *args), *fragments)


def test_user_errors_name_the_problem(capsys, tmp_path: Path) -> None:
    out = str(tmp_path / "a")
    assert_user_error(run(capsys, "convert", "resnet999", "--out", out, "--random-init"), "resnet999", "resnet18")
    missing = str(tmp_path / "missing.pt")
    assert_user_error(
        run(capsys, "convert", "resnet18", "--out", out, "--checkpoint", missing), "--checkpoint", missing
    )
    assert_user_error(
        run(capsys, "convert", "resnet18", "--out", out, "--checkpoint", missing, "--random-init"), "exclude each other"
    )
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    assert_user_error(
        run(
            capsys, "convert", "resnet18", "--out", out, "--random-init", "--labels", str(labels), "--num-classes", "3"
        ),
        "--num-classes 3",
        "2 classes",
    )
    nowhere = str(tmp_path / "nowhere")
    assert_user_error(
        run(capsys, "train", "--data", nowhere, "--variant", "tiny", "--epochs", "1", "--out", out), "--data", "nowhere"
    )
    assert_user_error(run(capsys, "push", nowhere, "user/repo"), "nowhere")
    assert_user_error(run(capsys, "verify", nowhere, "--timm", "resnet18"), "nowhere")
    assert_user_error(run(capsys, "predict", str(tmp_path), str(tmp_path / "img.png")), "img.png")
    assert_user_error(run(capsys, "push", str(tmp_path), "user/repo", "--endpoint", "ftp://x"), "--endpoint")
    assert not (tmp_path / "a").exists()


def test_convert_refuses_a_non_empty_out_before_any_work(capsys, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")

    def no_model_please(*args, **kwargs):
        raise AssertionError("a model was built before --out was checked")

    monkeypatch.setattr(timm, "create_model", no_model_please)
    assert_user_error(run(capsys, "convert", "resnet18", "--out", str(out), "--random-init"), "not empty")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_debug_shows_the_traceback(capsys, tmp_path: Path, monkeypatch) -> None:
    args = ("verify", str(tmp_path / "nowhere"), "--timm", "resnet18")
    status, _, err = run(capsys, "--debug", *args)
    assert status == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("resnet-model verify: error")
    monkeypatch.setenv("RESNET_MODEL_DEBUG", "1")
    status, _, err = run(capsys, *args)
    assert status == 2 and "Traceback" in err


@pytest.fixture(scope="module")
def timm_checkpoint(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    """A resnet10t with non-trivial weights and BatchNorm statistics, saved as timm safetensors."""
    torch.manual_seed(0)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=7).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.normal_(1, 0.1)
    path = tmp_path_factory.mktemp("ckpt") / "resnet10t.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path, model


def test_convert_checkpoint_matches_timm_and_verify_says_so(capsys, tmp_path: Path, timm_checkpoint) -> None:
    path, reference = timm_checkpoint
    out = tmp_path / "converted"
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps([f"class-{i}" for i in range(7)]))
    status, stdout, err = run(
        capsys, "convert", "resnet10t", "--out", str(out), "--checkpoint", str(path), "--labels", str(labels)
    )
    assert status == 0, err
    assert "parity: OK" in stdout
    expected = {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "configuration_resnet.py",
        "modeling_resnet.py",
        "README.md",
    }
    assert expected <= {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"]["AutoModelForImageClassification"] == "modeling_resnet.ResnetModelForImageClassification"
    assert config["id2label"]["6"] == "class-6"
    assert config["stem_type"] == "deep_tiered"
    processor = json.loads((out / "preprocessor_config.json").read_text())
    assert processor["image_processor_type"] == "TimmWrapperImageProcessor"
    assert processor["pretrained_cfg"]["mean"] == list(timm.data.resolve_data_config(model=reference)["mean"])
    card = (out / "README.md").read_text()
    assert "REPO_ID" not in card and "COMMIT_SHA" not in card and "# timm resnet10t" in card

    model = ResnetModelForImageClassification.from_pretrained(out).eval()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=x).logits, reference(x), rtol=0, atol=1e-5)

    status, stdout, err = run(capsys, "verify", str(out), "--timm", "resnet10t")
    assert status == 0, err
    assert "parity: OK" in stdout and "logits" in stdout and "stage4" in stdout

    status, stdout, err = run(capsys, "verify", str(out), "--timm", "resnet18")
    assert status == 1, stdout + err
    assert "does not have the architecture" in err and err.startswith("resnet-model verify: failed:")


def test_convert_new_head_keeps_timm_backbone(capsys, tmp_path: Path, timm_checkpoint) -> None:
    path, reference = timm_checkpoint
    out = tmp_path / "three"
    status, _, err = run(
        capsys, "convert", "resnet10t", "--out", str(out), "--checkpoint", str(path), "--num-classes", "3"
    )
    assert status == 0, err
    model = ResnetModelForImageClassification.from_pretrained(out).eval()
    assert model.config.num_labels == 3
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model.model.forward_features(x), reference.forward_features(x), rtol=0, atol=1e-5)


def test_convert_refuses_a_checkpoint_of_another_architecture(capsys, tmp_path: Path, timm_checkpoint) -> None:
    path, _ = timm_checkpoint
    result = run(capsys, "convert", "resnet18", "--out", str(tmp_path / "bad"), "--checkpoint", str(path))
    assert_user_error(result, "does not fit timm 'resnet18'")
    assert not (tmp_path / "bad").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bad")]  # nothing half-written


def test_convert_imagenet_model_names_its_classes_for_pipelines(capsys, tmp_path: Path) -> None:
    from transformers import pipeline

    out = tmp_path / "resnet18-hf"
    status, stdout, err = run(capsys, "convert", "resnet18", "--out", str(out), "--random-init")
    assert status == 0, err
    assert "random init" in stdout and "parity: OK" in stdout
    id2label = json.loads((out / "config.json").read_text())["id2label"]
    assert len(id2label) == 1000 and id2label["0"] == "tench, Tinca tinca" and id2label["207"] == "golden retriever"
    imagenet = set(timm.data.ImageNetInfo("imagenet-1k").label_descriptions())
    classify = pipeline("image-classification", model=str(out), trust_remote_code=True)
    pixels = torch.randint(0, 256, (64, 64, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    ranked = classify(Image.fromarray(pixels.numpy()), top_k=3)
    assert len(ranked) == 3 and all(entry["label"] in imagenet for entry in ranked), ranked
    capsys.readouterr()  # the pipeline's own loading output
    assert_user_error(run(capsys, "convert", "resnet18", "--out", str(out), "--random-init"), "not empty")


def test_predict_on_a_folder_suggests_an_audit_that_runs(capfd, tmp_path: Path) -> None:
    from resnet_model import ResnetConfig

    folder = tmp_path / "model"
    ResnetModelForImageClassification(
        ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=2, stem_width=16)
    ).save_pretrained(folder)
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(image)
    capfd.readouterr()  # save_pretrained's own output
    line = assert_user_error(run(capfd, "predict", str(folder), str(image)), "--trust-remote-code")
    suggestion = line.split("review it first with: ", 1)[1]
    assert suggestion == f"resnet-model audit {folder}"
    status, out, err = run(capfd, *suggestion.split()[1:])
    assert status == 0, err
    assert "modeling_resnet.py" in out and "configuration_resnet.py" in out
    assert_user_error(run(capfd, "audit", str(folder), "--revision", "main"), "local folder")
    status, out, err = run(capfd, "predict", str(folder), str(image), "--trust-remote-code", "--top-k", "1")
    assert status == 0, err
    assert "torchvision backend" not in err and out.strip().splitlines()[-1].startswith(str(image))
