"""push_to_hub, revision pinning and trust_remote_code against the hub, with the real clients.

The consumer always runs in a fresh interpreter where ``resnet_model`` cannot be imported, with an
empty Hugging Face cache, so the model can only come from the hub's remote code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hubtools import REPO_ROOT, T4_SITE, client_env, run_cli
from isolation import require_t4, run_isolated

MODEL_PKG = REPO_ROOT / "src" / "resnet_model"

PUBLISH = """
import json, sys, torch
import resnet_model
from resnet_model import ResnetConfig, ResnetModelForImageClassification
repo_id, out, expected_pkg, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
assert resnet_model.__file__.startswith(expected_pkg), resnet_model.__file__
torch.manual_seed(seed)
cfg = ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=5, stem_width=16)
model = ResnetModelForImageClassification(cfg).eval()
model.push_to_hub(repo_id, commit_message="push model")
from huggingface_hub import HfApi
sha = HfApi().model_info(repo_id).sha
x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    torch.save(model(x).logits, out)
import huggingface_hub, transformers
print(json.dumps({"sha": sha, "hub": huggingface_hub.__version__, "transformers": transformers.__version__}))
"""

LOAD = """
import json, sys, torch
from transformers import AutoModelForImageClassification
repo_id, out, specs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
results = {}
for i, kwargs in enumerate(specs):
    model = AutoModelForImageClassification.from_pretrained(repo_id, trust_remote_code=True, **kwargs).eval()
    assert "resnet_model" not in sys.modules
    with torch.no_grad():
        results[i] = model(x).logits
    results[f"module{i}"] = type(model).__module__
torch.save(results, out)
"""

# Appended to modeling_resnet.py for the second push: a behaviour change visible in the logits.
CODE_CHANGE = """

_ORIGINAL_FORWARD = ResnetModelForImageClassification.forward


def _shifted_forward(self, *args, **kwargs):
    output = _ORIGINAL_FORWARD(self, *args, **kwargs)
    output.logits = output.logits + 1000.0
    return output


ResnetModelForImageClassification.forward = _shifted_forward
"""


def _publish(
    repo_id: str, env: dict, work: Path, pkg_root: Path, python_path: list[Path] | None = None, seed: int = 0
) -> tuple[str, torch.Tensor]:
    script = work / "publish.py"
    script.write_text(PUBLISH)
    out = work / f"publish-{len(list(work.glob('publish-*')))}.pt"
    env = dict(env)
    env["PYTHONPATH"] = ":".join(str(p) for p in (python_path or []) + [pkg_root])
    proc = subprocess.run(
        [sys.executable, str(script), repo_id, str(out), str(pkg_root), str(seed)],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    expected_major = "0." if python_path else "2."
    assert report["hub"].startswith(expected_major), report
    return report["sha"], torch.load(out)


def _load(
    repo_id: str, specs: list[dict], hub_url: str, work: Path, t4: bool = False, token: str | None = None
) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    out = work / "load.pt"
    env = client_env(hub_url, work / "empty_hf_home", token=token)
    run_isolated(LOAD, repo_id, str(out), json.dumps(specs), cwd=work, t4=t4, env=env, timeout=300)
    return torch.load(out)


def _model_copy(dest: Path, change: str = "") -> Path:
    shutil.copytree(MODEL_PKG, dest / "resnet_model", ignore=shutil.ignore_patterns("__pycache__"))
    if change:
        with open(dest / "resnet_model" / "modeling_resnet.py", "a") as fh:
            fh.write(change)
    return dest


@pytest.mark.slow
def test_seed_flow_push_pin_and_load(hub, tmp_path, repo_name):
    token = hub.add_user("seeduser")
    home = tmp_path / "publisher_home"
    env = client_env(hub.url, home)
    login = run_cli(["auth", "login", "--token", token], env)
    assert login.returncode == 0, login.stderr
    repo_id = f"seeduser/{repo_name}"

    v1_pkg = _model_copy(tmp_path / "v1")
    sha1, logits1 = _publish(repo_id, env, tmp_path, v1_pkg)
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=token)
    assert api.model_info(repo_id).sha == sha1
    files = set(api.list_repo_files(repo_id, revision=sha1))
    assert {"config.json", "model.safetensors", "configuration_resnet.py", "modeling_resnet.py"} <= files

    loaded = _load(repo_id, [{"revision": sha1}], hub.url, tmp_path / "load1")
    assert torch.equal(loaded[0], logits1)
    assert sha1 in loaded["module0"]

    v2_pkg = _model_copy(tmp_path / "v2", CODE_CHANGE)
    sha2, logits2 = _publish(repo_id, env, tmp_path, v2_pkg)
    assert sha2 != sha1
    assert torch.equal(logits2, logits1 + 1000.0)
    loaded = _load(repo_id, [{"revision": sha1}, {}], hub.url, tmp_path / "load2")
    assert torch.equal(loaded[0], logits1), "a pinned revision must run the original code"
    assert torch.equal(loaded[1], logits1 + 1000.0), "the latest revision must run the new code"
    assert sha1 in loaded["module0"] and sha2 in loaded["module1"]


@pytest.mark.slow
def test_cross_repo_code(hub, make_api, tmp_path, repo_name):
    token = hub.add_user("crossuser")
    api = make_api(token)
    code_repo, weights_repo = f"crossuser/{repo_name}-code", f"crossuser/{repo_name}-weights"
    api.create_repo(code_repo)
    code_sha = api.upload_folder(
        folder_path=MODEL_PKG, repo_id=code_repo, allow_patterns=["configuration_resnet.py", "modeling_resnet.py"]
    ).oid
    # A later, broken commit on the code repo's main: only the pinned code_revision may be used.
    api.upload_file(
        path_or_fileobj=b"raise RuntimeError('broken')\n", path_in_repo="modeling_resnet.py", repo_id=code_repo
    )

    script = tmp_path / "save.py"
    script.write_text(
        """
import json, sys, torch
from pathlib import Path
from resnet_model import ResnetConfig, ResnetModelForImageClassification
out, code_repo = Path(sys.argv[1]), sys.argv[2]
torch.manual_seed(1)
model = ResnetModelForImageClassification(
    ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=3, stem_width=16)
).eval()
model.save_pretrained(out / "saved")
config = json.loads((out / "saved" / "config.json").read_text())
config["auto_map"] = {k: f"{code_repo}--{v}" for k, v in config["auto_map"].items()}
(out / "saved" / "config.json").write_text(json.dumps(config))
for py in (out / "saved").glob("*.py"):
    py.unlink()
x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    torch.save(model(x).logits, out / "expected.pt")
"""
    )
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), code_repo], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    api.create_repo(weights_repo)
    api.upload_folder(folder_path=tmp_path / "saved", repo_id=weights_repo)
    assert not any(f.endswith(".py") for f in api.list_repo_files(weights_repo))
    loaded = _load(weights_repo, [{"code_revision": code_sha}], hub.url, tmp_path / "load")
    assert torch.equal(loaded[0], torch.load(tmp_path / "expected.pt"))
    assert code_sha in loaded["module0"]


@pytest.mark.slow
def test_transformers4_client_push_pin_and_load(hub, tmp_path, repo_name):
    require_t4()
    token = hub.add_user("t4user")
    env = client_env(hub.url, tmp_path / "home", token=token)
    repo_id = f"t4user/{repo_name}"
    version = subprocess.run(
        [
            sys.executable,
            "-c",
            "import transformers, huggingface_hub as h; print(transformers.__version__, h.__version__)",
        ],
        env={**env, "PYTHONPATH": str(T4_SITE)},
        capture_output=True,
        text=True,
    ).stdout.split()
    assert version[0].startswith("4.") and version[1].startswith("0.")

    stats = hub.server.config.app.state.hub.stats
    lfs_before = stats["lfs_uploads"]
    sha1, logits1 = _publish(repo_id, env, tmp_path, _model_copy(tmp_path / "v1"), python_path=[T4_SITE], seed=4)
    assert stats["lfs_uploads"] > lfs_before, "the 0.36 client uploads weights through the LFS batch API"
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=token)
    (weights,) = api.get_paths_info(repo_id, ["model.safetensors"], revision=sha1)
    assert weights.lfs is not None
    sha2, logits2 = _publish(
        repo_id, env, tmp_path, _model_copy(tmp_path / "v2", CODE_CHANGE), python_path=[T4_SITE], seed=4
    )
    assert sha2 != sha1 and torch.equal(logits2, logits1 + 1000.0)
    loaded = _load(repo_id, [{"revision": sha1}, {}], hub.url, tmp_path / "load", t4=True)
    assert torch.equal(loaded[0], logits1)
    assert torch.equal(loaded[1], logits1 + 1000.0)
