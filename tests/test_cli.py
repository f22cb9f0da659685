"""`resnet-model` as a user runs it: help, argument errors, convert and verify against timm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from resnet_model import ResnetModelForImageClassification

CLI = str(Path(sys.executable).with_name("resnet-model"))
COMMANDS = ("convert", "train", "push", "predict", "verify", "audit", "hub", "demo")


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """Run the console script; returns the completed process (never raises on a non-zero exit)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    full_env.update({"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", **(env or {})})
    return subprocess.run([CLI, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2 and exactly one line on stderr, naming what was wrong."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    proc = run_cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: resnet-model " + command)


def test_top_level_help_lists_every_command() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ((), ["required: COMMAND"]),
        (("frobnicate",), ["invalid choice", "frobnicate"]),
        (("convert", "resnet18"), ["--out"]),
        (("convert", "resnet18", "--out", "x", "--num-classes", "0"), ["--num-classes", "positive integer"]),
        (("train", "--data", "digits", "--variant", "tiny", "--epochs", "-1", "--out", "x"), ["--epochs"]),
        (("predict", "some/repo"), ["IMAGE"]),
        (("audit", "some/repo"), ["--revision"]),
        (("hub", "frobnicate"), ["serve", "add-user"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: tuple[str, ...], fragments: list[str]) -> None:
    assert_user_error(run_cli(*args), *fragments)


def test_user_errors_name_the_problem(tmp_path: Path) -> None:
    assert_user_error(
        run_cli("convert", "resnet999", "--out", str(tmp_path / "a"), "--random-init"),
        "resnet999",
        "resnet18",  # the allowed values are listed
    )
    assert_user_error(
        run_cli("convert", "resnet18", "--out", str(tmp_path / "a"), "--checkpoint", str(tmp_path / "missing.pt")),
        "--checkpoint",
        "missing.pt",
    )
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    assert_user_error(
        run_cli(
            "convert",
            "resnet18",
            "--out",
            str(tmp_path / "a"),
            "--random-init",
            "--labels",
            str(labels),
            "--num-classes",
            "3",
        ),
        "--num-classes 3",
        "2 classes",
    )
    assert_user_error(
        run_cli("train", "--data", str(tmp_path / "nowhere"), "--variant", "tiny", "--epochs", "1", "--out", "o"),
        "--data",
        "nowhere",
    )
    assert_user_error(run_cli("push", str(tmp_path / "nowhere"), "user/repo"), "nowhere")
    assert_user_error(run_cli("verify", str(tmp_path / "nowhere"), "--timm", "resnet18"), "nowhere")
    assert_user_error(run_cli("predict", str(tmp_path), str(tmp_path / "img.png"), "--trust-remote-code"), "img.png")
    assert not (tmp_path / "a").exists()


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


def test_convert_checkpoint_matches_timm_and_verify_says_so(tmp_path: Path, timm_checkpoint) -> None:
    path, reference = timm_checkpoint
    out = tmp_path / "converted"
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps([f"class-{i}" for i in range(7)]))
    proc = run_cli("convert", "resnet10t", "--out", str(out), "--checkpoint", str(path), "--labels", str(labels))
    assert proc.returncode == 0, proc.stderr
    assert "parity: OK" in proc.stdout
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
    processor = json.loads((out / "preprocessor_config.json").read_text())
    assert processor["image_processor_type"] == "TimmWrapperImageProcessor"
    assert processor["pretrained_cfg"]["mean"] == list(timm.data.resolve_data_config(model=reference)["mean"])

    model = ResnetModelForImageClassification.from_pretrained(out).eval()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=x).logits, reference(x), rtol=0, atol=1e-5)

    proc = run_cli("verify", str(out), "--timm", "resnet10t")
    assert proc.returncode == 0, proc.stderr
    assert "parity: OK" in proc.stdout and "logits" in proc.stdout and "stage4" in proc.stdout

    proc = run_cli("verify", str(out), "--timm", "resnet18")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "does not have the architecture" in proc.stderr


def test_convert_new_head_keeps_timm_backbone(tmp_path: Path, timm_checkpoint) -> None:
    path, reference = timm_checkpoint
    out = tmp_path / "three"
    proc = run_cli("convert", "resnet10t", "--out", str(out), "--checkpoint", str(path), "--num-classes", "3")
    assert proc.returncode == 0, proc.stderr
    model = ResnetModelForImageClassification.from_pretrained(out).eval()
    assert model.config.num_labels == 3
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model.model.forward_features(x), reference.forward_features(x), rtol=0, atol=1e-5)


def test_convert_refuses_a_checkpoint_of_another_architecture(tmp_path: Path, timm_checkpoint) -> None:
    path, _ = timm_checkpoint
    proc = run_cli("convert", "resnet18", "--out", str(tmp_path / "bad"), "--checkpoint", str(path))
    assert_user_error(proc, "does not fit timm 'resnet18'")
    assert not (tmp_path / "bad").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bad")]  # nothing half-written


def test_convert_random_init_and_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "rand"
    proc = run_cli("convert", "resnet10t", "--out", str(out), "--random-init", "--num-classes", "2")
    assert proc.returncode == 0, proc.stderr
    assert "random init" in proc.stdout and "parity: OK" in proc.stdout
    assert_user_error(run_cli("convert", "resnet10t", "--out", str(out), "--random-init"), "not empty")


def test_hub_add_user_delegates_to_the_hub_server(tmp_path: Path) -> None:
    proc = run_cli("hub", "add-user", "alice", "--root", str(tmp_path / "hub"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("hf_")
