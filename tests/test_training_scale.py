"""examples/train_ddp.py: bf16 autocast, gradient checkpointing, accuracy eval, exact resume, and 2-rank DDP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "train_ddp.py"
ARGS = ["--bf16", "--gradient-checkpointing", "--max-steps", "4", "--save-steps", "2", "--per-class", "4"]


@pytest.fixture(scope="module")
def train_ddp():
    """The example script, imported as a module."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import train_ddp

        yield train_ddp
    finally:
        sys.path.remove(str(SCRIPT.parent))


@pytest.mark.slow
def test_bf16_checkpointed_training_evaluates_and_resumes_exactly(train_ddp, tmp_path):
    dtypes = set()

    def record(module, inputs, output):
        if isinstance(module, torch.nn.Linear) and module.training:
            dtypes.add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        straight = train_ddp.main(["--output-dir", str(tmp_path / "a"), *ARGS])
    finally:
        handle.remove()
    assert dtypes == {torch.bfloat16}  # autocast ran the training forward in bf16 on CPU
    assert straight.model.model.grad_checkpointing  # timm checkpoints block by block
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    assert any("eval_accuracy" in entry for entry in straight.state.log_history)

    (tmp_path / "b").mkdir()
    shutil.copytree(tmp_path / "a" / "checkpoint-2", tmp_path / "b" / "checkpoint-2")
    resumed = train_ddp.main(["--output-dir", str(tmp_path / "b"), *ARGS, "--resume", "last"])
    assert resumed.state.global_step == 4
    a, b = (load_file(tmp_path / run / "final_rank0.safetensors") for run in ("a", "b"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_torchrun_two_ranks_finish_with_identical_weights(tmp_path):
    out = tmp_path / "ddp"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += [str(SCRIPT), "--output-dir", str(out), *ARGS]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    rank0, rank1 = (load_file(out / f"final_rank{r}.safetensors") for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    assert [k for k in rank0 if not torch.equal(rank0[k], rank1[k])] == []
    saved = load_file(out / "model" / "model.safetensors")
    assert all(torch.equal(saved[k], rank0[k]) for k in saved)
    initial = load_file(out / "checkpoint-2" / "model.safetensors")
    assert not torch.equal(initial["model.conv1.weight"], rank0["model.conv1.weight"])  # it trained past step 2
