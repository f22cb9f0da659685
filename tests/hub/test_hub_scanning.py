"""Upload scanning: dangerous pickles are refused, safe files pass, the scan status is reported."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import pytest
import torch
from huggingface_hub.errors import HfHubHTTPError
from safetensors.torch import save as save_safetensors

from hub_server import running_hub


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _evil_pickle() -> bytes:
    return pickle.dumps(_Evil())


def _evil_torch_zip() -> bytes:
    buf = io.BytesIO()
    torch.save({"weights": torch.zeros(2)}, buf)
    # Re-pack the torch archive with the malicious data.pkl in place of the real one.
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("data.pkl"):
                data = _evil_pickle()
            dst.writestr(item, data)
    return out.getvalue()


@pytest.mark.parametrize("name,make", [("model.pkl", _evil_pickle), ("pytorch_model.bin", _evil_torch_zip)])
def test_dangerous_pickle_is_refused(make_api, alice, repo_name, name, make):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    head = api.model_info(repo_id).sha
    with pytest.raises(HfHubHTTPError) as exc:
        api.upload_file(path_or_fileobj=make(), path_in_repo=name, repo_id=repo_id)
    assert 400 <= exc.value.response.status_code < 500
    message = str(exc.value)
    assert name in message and ("posix.system" in message or "os.system" in message)
    assert api.model_info(repo_id).sha == head


def test_safe_files_pass_and_report_status(make_api, alice, repo_name):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    tensors = save_safetensors({"w": torch.ones(3)})
    buf = io.BytesIO()
    torch.save({"w": torch.ones(3)}, buf)
    api.upload_file(path_or_fileobj=tensors, path_in_repo="model.safetensors", repo_id=repo_id)
    api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="pytorch_model.bin", repo_id=repo_id)
    entries = {e.path: e for e in api.list_repo_tree(repo_id, expand=True)}
    assert entries["model.safetensors"].security.safe
    scan = entries["pytorch_model.bin"].security.pickle_import_scan
    assert scan["status"] == "safe"
    assert {"module": "torch._utils", "name": "_rebuild_tensor_v2", "safety": "innocuous"} in scan["imports"]


def test_opt_out_accepts_and_flags(tmp_path, repo_name):
    from huggingface_hub import HfApi

    with running_hub(tmp_path / "root", scan_uploads=False) as hub:
        token = hub.add_user("dave")
        api = HfApi(endpoint=hub.url, token=token)
        api.create_repo(repo_name)
        api.upload_file(path_or_fileobj=_evil_pickle(), path_in_repo="evil.pkl", repo_id=f"dave/{repo_name}")
        (entry,) = api.get_paths_info(f"dave/{repo_name}", ["evil.pkl"])
        assert entry.security.safe is False
        assert entry.security.pickle_import_scan["status"] == "unsafe"
