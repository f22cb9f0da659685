"""The one-command demo, reduced: train → push to an embedded Hub → pinned reload in a fresh process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).with_name("resnet-model"))


@pytest.mark.slow
def test_demo_reduced(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update({"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"})
    out = tmp_path / "demo"
    proc = subprocess.run(
        [CLI, "demo", "--epochs", "3", "--out", str(out)], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "demo.json").read_text())
    pushed = re.search(r"commit: ([0-9a-f]{40})", proc.stdout).group(1)
    assert summary["commit"] == pushed
    assert summary["reload"]["code_commit"] == pushed
    assert summary["reload"]["cached_snapshots"] == [pushed]
    assert summary["reload"]["resnet_model_importable"] is False
    assert summary["reload"]["resnet_model_loaded"] is False
    assert summary["reload"]["model_class"].startswith("transformers_modules.")
    assert summary["reloaded_accuracy"] >= 0.90
    assert summary["reloaded_predictions_match"] is True
    assert summary["reloaded_accuracy"] == summary["train_accuracy_in_process"]
    assert f'revision="{pushed}"' in proc.stdout
    assert "held-out accuracy (reloaded)" in proc.stdout
    for name in ("loss_accuracy.png", "confusion_matrix.png", "metrics.json", "model/model.safetensors"):
        assert (out / name).is_file(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".demo")]
