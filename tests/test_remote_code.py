"""The saved folder is a self-contained custom-code model: fresh processes load it through the Auto classes."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch
from isolation import TRANSFORMERS_MAJORS, isolated_command, run_isolated
from model_utils import randomize_batchnorm_stats
from safetensors.torch import save_file

from resnet_model import ResnetConfig, ResnetModel, ResnetModelForImageClassification

RELOAD = """
import sys, torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification
folder, expected_file = sys.argv[1], sys.argv[2]
expected = load_file(expected_file)
config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
assert type(config).__name__ == "ResnetConfig", type(config)
classifier = AutoModelForImageClassification.from_pretrained(folder, trust_remote_code=True).eval()
features = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
assert type(classifier).__module__.startswith("transformers_modules"), type(classifier).__module__
with torch.no_grad():
    assert torch.equal(classifier(expected["x"]).logits, expected["logits"])
    assert torch.equal(features(expected["x"]).last_hidden_state, expected["features"])
on_disk = load_file(folder + "/model.safetensors")
state = classifier.state_dict()
assert set(state) == set(on_disk), set(state) ^ set(on_disk)
for key, value in on_disk.items():
    assert torch.equal(state[key], value), key
import transformers
print("reloaded on transformers", transformers.__version__)
"""


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A classifier with non-trivial BatchNorm statistics, saved with its code, and its reference outputs."""
    folder = tmp_path_factory.mktemp("saved")
    model = ResnetModelForImageClassification(
        ResnetConfig(block_type="bottleneck", layers=[1, 2, 1, 1], stem_type="deep", stem_width=16, avg_down=True,
                     id2label={0: "cat", 1: "dog", 2: "bird"})
    ).eval()  # fmt: skip
    randomize_batchnorm_stats(model)
    model.save_pretrained(folder / "model")
    x = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    features = ResnetModel(model.config).eval()
    features.load_state_dict(model.state_dict())
    with torch.no_grad():
        expected = {"x": x, "logits": model(x).logits, "features": features(x).last_hidden_state}
    save_file(expected, folder / "expected.safetensors")
    return folder


def test_save_pretrained_writes_code_config_and_weights(saved_model):
    files = sorted(p.name for p in (saved_model / "model").iterdir())
    assert files == [
        "config.json",
        "configuration_resnet.py",
        "model.safetensors",
        "modeling_resnet.py",
        "preprocessor_config.json",
    ]
    auto_map = json.loads((saved_model / "model" / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_resnet.ResnetConfig",
        "AutoModel": "modeling_resnet.ResnetModel",
        "AutoModelForImageClassification": "modeling_resnet.ResnetModelForImageClassification",
        "AutoBackbone": "modeling_resnet.ResnetBackbone",
    }


@pytest.mark.parametrize("t4", TRANSFORMERS_MAJORS)
def test_fresh_process_reloads_identically(saved_model, t4):
    proc = run_isolated(
        RELOAD, str(saved_model / "model"), str(saved_model / "expected.safetensors"), cwd=saved_model, t4=t4
    )
    assert ("reloaded on transformers 4.57" in proc.stdout) == t4


@pytest.mark.parametrize("t4", TRANSFORMERS_MAJORS)
def test_loading_without_trust_remote_code_fails_clearly(saved_model, t4):
    code = """
import sys
from transformers import AutoModelForImageClassification
for trust in (None, False):
    try:
        AutoModelForImageClassification.from_pretrained(sys.argv[1], trust_remote_code=trust)
    except ValueError as err:
        assert "trust_remote_code" in str(err), err
    else:
        raise SystemExit(f"loaded without trusting remote code (trust_remote_code={trust})")
print("refused")
"""
    proc = run_isolated(code, str(saved_model / "model"), cwd=saved_model, t4=t4)
    assert "refused" in proc.stdout


@pytest.mark.slow
def test_every_head_loads_whichever_class_was_saved(tmp_path):
    config = ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=3)
    ResnetModel(config).save_pretrained(tmp_path / "features-only")
    code = """
import sys
from transformers import AutoModelForImageClassification
model = AutoModelForImageClassification.from_pretrained(sys.argv[1], trust_remote_code=True)
print(type(model).__name__)
"""
    proc = run_isolated(code, str(tmp_path / "features-only"), cwd=tmp_path)
    assert "ResnetModelForImageClassification" in proc.stdout


def test_tutorial_register_for_auto_class_calls_still_work(tmp_path):
    ResnetConfig.register_for_auto_class()
    ResnetModel.register_for_auto_class("AutoModel")
    ResnetModelForImageClassification.register_for_auto_class("AutoModelForImageClassification")
    resnet50d_config = ResnetConfig(block_type="bottleneck", stem_width=32, stem_type="deep", avg_down=True)
    resnet50d = ResnetModelForImageClassification(resnet50d_config)
    resnet50d.save_pretrained(tmp_path)
    assert {"configuration_resnet.py", "modeling_resnet.py", "config.json", "model.safetensors"} <= {
        p.name for p in tmp_path.iterdir()
    }


@pytest.mark.slow
def test_edited_code_is_picked_up_on_reload(tmp_path):
    """A re-saved folder with changed code must not run the stale cached module."""
    ResnetModelForImageClassification(ResnetConfig(block_type="basic", layers=[1, 1, 1, 1])).save_pretrained(
        tmp_path / "m"
    )
    code = """
import sys
from transformers import AutoModelForImageClassification
model = AutoModelForImageClassification.from_pretrained(sys.argv[1], trust_remote_code=True)
print("EDITED" if getattr(sys.modules[type(model).__module__], "EDITED", False) else "ORIGINAL")
"""
    env = {"HF_MODULES_CACHE": str(tmp_path / "modules")}
    assert "ORIGINAL" in run_isolated(code, str(tmp_path / "m"), cwd=tmp_path, env=env).stdout
    modeling = tmp_path / "m" / "modeling_resnet.py"
    modeling.write_text(modeling.read_text() + "\nEDITED = True\n")
    assert "EDITED" in run_isolated(code, str(tmp_path / "m"), cwd=tmp_path, env=env).stdout


@pytest.mark.slow
def test_parallel_first_loads_share_an_empty_module_cache(tmp_path):
    ResnetModelForImageClassification(ResnetConfig(block_type="basic", layers=[1, 1, 1, 1])).save_pretrained(
        tmp_path / "m"
    )
    code = """
import sys
from transformers import AutoModelForImageClassification
AutoModelForImageClassification.from_pretrained(sys.argv[1], trust_remote_code=True)
print("ok")
"""
    command, env = isolated_command(
        code, str(tmp_path / "m"), cwd=tmp_path, env={"HF_MODULES_CACHE": str(tmp_path / "modules")}
    )
    procs = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0 and "ok" in out, err
