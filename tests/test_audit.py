"""`push`, `predict` and `audit` against a running Hub: pinning, refusing remote code, auditing without running it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from resnet_model import ResnetConfig, ResnetModelForImageClassification
from resnet_toolkit.processing import image_processor_from_data_config, save_image_processor

hub_server = pytest.importorskip("hub_server")

CLI = str(Path(sys.executable).with_name("resnet-model"))
REPO = "alice/tiny-resnet"
EXTRAS = "alice/extras"
DATA_CONFIG = {"input_size": [3, 32, 32], "interpolation": "bilinear", "crop_pct": 1.0}

HELPERS = """import pathlib, os
pathlib.Path(os.environ["AUDIT_MARKER"]).write_text("helpers.py ran")


def touch():
    pathlib.Path(os.environ["AUDIT_MARKER"]).write_text("touch ran")
"""
EXTRA_CODE = """import pathlib, os
pathlib.Path(os.environ["AUDIT_MARKER"]).write_text("extra_code.py ran")


class Thing:
    pass
"""


def run_cli(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the console script with the given Hub environment."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    full_env.update({"HF_HUB_DISABLE_TELEMETRY": "1", **env})
    return subprocess.run([CLI, *args], env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A running hub with a trusted commit and a tampered one of the same repo."""
    root = tmp_path_factory.mktemp("audit")
    trusted = root / "trusted"
    torch.manual_seed(0)
    model = ResnetModelForImageClassification(
        ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=3, id2label={0: "ant", 1: "bee", 2: "cat"})
    )
    model.save_pretrained(trusted)
    save_image_processor(model.config, trusted, **DATA_CONFIG)
    tampered = root / "tampered"
    shutil.copytree(trusted, tampered)
    modeling = tampered / "modeling_resnet.py"
    modeling.write_text(modeling.read_text() + "\n\nfrom .helpers import touch\n\ntouch()\n")
    (tampered / "helpers.py").write_text(HELPERS)
    config = json.loads((tampered / "config.json").read_text())
    config["auto_map"]["AutoBackbone"] = f"{EXTRAS}--extra_code.Thing"
    (tampered / "config.json").write_text(json.dumps(config, indent=2))
    extras = root / "extras"
    extras.mkdir()
    (extras / "extra_code.py").write_text(EXTRA_CODE)
    image = root / "image.png"
    Image.fromarray(torch.randint(0, 256, (40, 48, 3), generator=torch.Generator().manual_seed(0)).byte().numpy()).save(
        image
    )
    with hub_server.running_hub(root / "hub") as running:
        token = running.add_user("alice")
        env = {
            "HF_ENDPOINT": running.url,
            "HF_TOKEN": token,
            "HF_HOME": str(root / "hf_home"),
            "AUDIT_MARKER": str(root / "MARKER"),
        }
        pushed = run_cli("push", str(trusted), REPO, "--endpoint", running.url, "--token", token, env=env)
        assert pushed.returncode == 0, pushed.stderr
        from huggingface_hub import HfApi

        api = HfApi(endpoint=running.url, token=token)
        v1 = api.model_info(REPO).sha
        api.create_repo(EXTRAS)
        api.upload_folder(folder_path=str(extras), repo_id=EXTRAS)
        v2 = api.upload_folder(folder_path=str(tampered), repo_id=REPO, commit_message="tamper").oid
        yield {
            "env": env,
            "v1": v1,
            "v2": v2,
            "pushed": pushed,
            "trusted": trusted,
            "tampered": tampered,
            "image": image,
            "marker": root / "MARKER",
            "model": model,
        }


def test_push_prints_the_commit_and_the_pinned_line(hub) -> None:
    out = hub["pushed"].stdout
    assert f"commit: {hub['v1']}" in out
    assert (
        f'AutoModelForImageClassification.from_pretrained("{REPO}", revision="{hub["v1"]}", trust_remote_code=True)'
        in out
    )


def test_predict_refuses_remote_code_without_the_flag(hub) -> None:
    proc = run_cli("predict", REPO, str(hub["image"]), "--revision", hub["v2"], env=hub["env"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refusing" in proc.stderr and "--trust-remote-code" in proc.stderr
    assert not hub["marker"].exists()


def test_predict_pinned_shows_code_and_matches_local_model(hub) -> None:
    proc = run_cli(
        "predict",
        REPO,
        str(hub["image"]),
        "--revision",
        hub["v1"],
        "--top-k",
        "2",
        "--trust-remote-code",
        "--require-pinned",
        env=hub["env"],
    )
    assert proc.returncode == 0, proc.stderr
    assert f"revision: {hub['v1']}" in proc.stdout
    assert "not a full commit SHA" not in proc.stderr
    for name in ("configuration_resnet.py", "modeling_resnet.py"):
        digest = hashlib.sha256((hub["trusted"] / name).read_bytes()).hexdigest()
        assert f"{digest}  {REPO}@{hub['v1'][:12]}/{name}" in proc.stdout
    processor = image_processor_from_data_config(
        json.loads((hub["trusted"] / "preprocessor_config.json").read_text())["pretrained_cfg"]
    )
    with Image.open(hub["image"]) as image:
        pixels = processor(image.convert("RGB"), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        probabilities = hub["model"].eval()(pixel_values=pixels).logits.softmax(-1)[0]
    line = next(line for line in proc.stdout.splitlines() if line.startswith(str(hub["image"])))
    ranked = [part.strip() for part in line.split(": ", 1)[1].split(",")]
    assert len(ranked) == 2
    top = int(probabilities.argmax())
    label, probability = ranked[0].split(" (")
    assert label == hub["model"].config.id2label[top]
    assert abs(float(probability.rstrip(")")) - float(probabilities[top])) < 1e-3


def test_predict_warns_on_a_branch_and_require_pinned_refuses(hub) -> None:
    args = ("predict", REPO, str(hub["image"]), "--revision", "main", "--trust-remote-code")
    refused = run_cli(*args, "--require-pinned", env=hub["env"])
    assert refused.returncode == 2 and "--require-pinned" in refused.stderr and hub["v2"] in refused.stderr
    assert not hub["marker"].exists()


def test_audit_shows_the_diff_and_runs_nothing(hub) -> None:
    proc = run_cli("audit", REPO, "--revision", hub["v2"], "--against", hub["v1"], env=hub["env"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert not hub["marker"].exists(), "audit imported the code it audited"
    assert "CHANGED: modeling_resnet.py" in out
    assert "+from .helpers import touch" in out
    assert "NEW (not in the trusted version): helpers.py" in out
    assert "identical: configuration_resnet.py" in out
    for text in (HELPERS, EXTRA_CODE):
        assert hashlib.sha256(text.encode()).hexdigest() in out
    assert f"{EXTRAS}@" in out and "NOT pinned" in out
    assert "imported by modeling_resnet.py" in out

    against_dir = run_cli("audit", REPO, "--revision", hub["v2"], "--against", str(hub["trusted"]), env=hub["env"])
    assert against_dir.returncode == 1 and "CHANGED: modeling_resnet.py" in against_dir.stdout
    same = run_cli("audit", REPO, "--revision", hub["v1"], "--against", str(hub["trusted"]), env=hub["env"])
    assert same.returncode == 0, same.stdout + same.stderr
    assert "match the trusted version" in same.stdout
    assert not hub["marker"].exists()


def test_audit_user_errors(hub) -> None:
    proc = run_cli("audit", "alice/nope", "--revision", hub["v1"], env=hub["env"])
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "alice/nope" in proc.stderr
    proc = run_cli("audit", REPO, "--revision", hub["v1"], "--against", "not-a-sha", env=hub["env"])
    assert proc.returncode == 2 and "--against" in proc.stderr
