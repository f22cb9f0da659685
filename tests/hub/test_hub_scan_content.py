"""The scanner judges content, not names: compressed and archived pickles, cache keys, the allow-list,
bombs, unscanned formats and binaries that are not pickles (issue #13, items 1-6)."""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import os
import pickle
import tarfile
import threading
import zipfile

import httpx2 as httpx
import joblib
import numpy as np
import psutil
import pytest
import torch
from hubtools import seeded_bytes
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError
from test_hub_scanning import _evil_torch_zip as evil_torch_zip

from hub_server import RepoRef, running_hub
from hub_server.storage import AddFile


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def evil_pickle(protocol: int = 4) -> bytes:
    return pickle.dumps(_Evil(), protocol=protocol)


def joblib_bytes(value, compress) -> bytes:
    buf = io.BytesIO()
    joblib.dump(value, buf, compress=compress)
    return buf.getvalue()


def refused(api: HfApi, repo_id: str, data: bytes, name: str) -> str:
    """Upload ``data`` as ``name``; the refusal's message (the test fails if it is accepted)."""
    head = api.model_info(repo_id).sha
    with pytest.raises(HfHubHTTPError) as exc:
        api.upload_file(path_or_fileobj=data, path_in_repo=name, repo_id=repo_id)
    assert exc.value.response.status_code == 422, exc.value.response.text
    assert api.model_info(repo_id).sha == head
    return exc.value.response.json()["error"]


# --------------------------------------------------------------------------- 1. compressed pickles


@pytest.mark.parametrize("compress", [3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3), ("lz4", 3)])
def test_compressed_joblib_pickle_is_scanned_whatever_its_name(repo, compress):
    api, repo_id = repo
    data = joblib_bytes({"w": np.arange(10.0), "payload": _Evil()}, compress)
    for name in ("model.joblib", "weights.dat", "notes.txt"):
        message = refused(api, repo_id, data, name)
        assert name in message and "posix.system" in message


def test_payload_inside_a_joblib_object_array_is_found(repo):
    api, repo_id = repo
    data = joblib_bytes({"w": np.arange(1000.0), "objs": np.array([1, _Evil()], dtype=object)}, 3)
    assert "posix.system" in refused(api, repo_id, data, "model.joblib")


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 1)])
def test_joblib_numpy_arrays_pass_and_read_safe(repo, compress):
    api, repo_id = repo
    data = joblib_bytes({"w": np.random.default_rng(0).standard_normal((64, 64)), "b": np.zeros(3, np.int8)}, compress)
    api.upload_file(path_or_fileobj=data, path_in_repo="model.joblib", repo_id=repo_id)
    (entry,) = api.get_paths_info(repo_id, ["model.joblib"], expand=True)
    assert entry.security.safe and entry.security.pickle_import_scan["status"] == "safe"


def test_opt_out_shows_compressed_pickle_as_unsafe_everywhere(tmp_path, repo_name):
    with running_hub(tmp_path / "root", scan_uploads=False) as hub:
        api = HfApi(endpoint=hub.url, token=hub.add_user("dave"))
        repo_id = f"dave/{repo_name}"
        api.create_repo(repo_id)
        api.upload_file(path_or_fileobj=joblib_bytes(_Evil(), 3), path_in_repo="m.joblib", repo_id=repo_id)
        (listed,) = [e for e in api.list_repo_tree(repo_id, expand=True) if e.path == "m.joblib"]
        (info,) = api.get_paths_info(repo_id, ["m.joblib"], expand=True)
        for entry in (listed, info):
            assert entry.security.safe is False and entry.security.status == "unsafe"
        page = httpx.get(f"{hub.url}/{repo_id}").text
        assert 'class="scan-unsafe"' in page and "posix.system" in page


# --------------------------------------------------------------------------- 2. verdicts per content


def test_same_bytes_under_a_numpy_name_in_the_same_commit_are_still_refused(repo):
    api, repo_id = repo
    data = evil_torch_zip()
    head = api.model_info(repo_id).sha
    ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=data) for p in ("a.npy", "pytorch_model.bin")]
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_commit(repo_id, ops, commit_message="both")
    assert exc.value.response.status_code == 422
    message = exc.value.response.json()["error"]
    assert "a.npy" in message and "pytorch_model.bin" in message
    assert api.model_info(repo_id).sha == head


def test_another_users_upload_cannot_plant_a_verdict(make_api, alice, bob, repo_name):
    data = evil_torch_zip()
    bobs = make_api(bob)
    bobs.create_repo(f"bob/{repo_name}")
    refused(bobs, f"bob/{repo_name}", data, "weights.npy")  # bob first, under a name scanned differently before
    alices = make_api(alice)
    alices.create_repo(f"alice/{repo_name}")
    assert "posix.system" in refused(alices, f"alice/{repo_name}", data, "pytorch_model.bin")


# --------------------------------------------------------------------------- 3. allow-list


GADGETS = {
    "getitem": b"coperator\ngetitem\n(cbuiltins\nglobals\n)RVeval\ntR(V1+1\ntR.",
    "vars": b"cbuiltins\nvars\n(cbuiltins\nobject\ntR.",
    "__import__": b"cbuiltins\n__import__\n(Vos\ntR.",
    "main-class": b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x08__main__\x8c\x03Net\x93)\x81.",
}


@pytest.mark.parametrize("name", sorted(GADGETS))
def test_globals_outside_the_allow_list_are_refused(repo, name):
    api, repo_id = repo
    message = refused(api, repo_id, GADGETS[name], "model.bin")
    assert "not on the allow-list" in message


def test_weights_saved_by_torch_and_numpy_pass(repo, tmp_path):
    api, repo_id = repo
    state = {"w": torch.ones(2, 3, dtype=torch.bfloat16), "step": torch.tensor(3), "h": torch.zeros(2).half()}
    buf = io.BytesIO()
    torch.save(state, buf)
    torch.save(state, tmp_path / "legacy.bin", _use_new_zipfile_serialization=False)
    files = {
        "pytorch_model.bin": buf.getvalue(),
        "legacy.pth.tar": (tmp_path / "legacy.bin").read_bytes(),
        "array.pkl": pickle.dumps(np.arange(6).reshape(2, 3)),
        "array.npy": _npy(np.arange(4.0)),
    }
    ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=d) for p, d in files.items()]
    api.create_commit(repo_id, ops, commit_message="weights")
    for entry in api.get_paths_info(repo_id, list(files), expand=True):
        assert entry.security.safe, (entry.path, entry.security)


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


# --------------------------------------------------------------------------- 4. bombs


@functools.cache
def bz2_bomb() -> bytes:
    """~2 KiB that bz2 readers (joblib, pandas) inflate to a 320 MiB pickle (20 concatenated streams)."""
    header = b"\x80\x04\x8e" + (320 << 20).to_bytes(8, "little")  # BINBYTES8 of 320 MiB
    return bz2.compress(header + b"\0" * (16 << 20)) + bz2.compress(b"\0" * (16 << 20)) * 19


def test_decompression_bomb_is_refused_while_the_server_answers(hub, repo, alice):
    api, repo_id = repo
    server = psutil.Process()
    rss_before = server.memory_info().rss
    outcome: dict = {}

    def upload() -> None:
        try:
            api.upload_file(path_or_fileobj=bz2_bomb(), path_in_repo="model.bin", repo_id=repo_id)
        except HfHubHTTPError as exc:
            outcome["response"] = exc.response

    thread = threading.Thread(target=upload)
    thread.start()
    answered = 0
    while thread.is_alive():
        r = httpx.get(f"{hub.url}/api/whoami-v2", headers={"authorization": f"Bearer {alice}"}, timeout=30)
        assert r.status_code == 200
        answered += 1
    thread.join()
    response = outcome["response"]
    assert response.status_code == 422 and "within limits" in response.json()["error"], response.text
    assert answered >= 1
    assert server.memory_info().rss - rss_before < 200 << 20


def test_zip_holding_a_bomb_is_refused(repo):
    api, repo_id = repo
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", bz2_bomb())
    assert len(out.getvalue()) < 4096
    assert "within limits" in refused(api, repo_id, out.getvalue(), "model.zip")


# --------------------------------------------------------------------------- 5. names the old scanner skipped


def _tar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(
    "name,make",
    [
        ("model.pth.tar", lambda: _tar({"pickle": evil_pickle(2)})),
        ("data.pkl.gz", lambda: gzip.compress(evil_pickle())),
        ("data.pickle.bz2", lambda: bz2.compress(evil_pickle())),
        ("checkpoint", lambda: evil_pickle(0)),
        ("weights.safetensors", evil_torch_zip),
    ],
)
def test_pickles_under_any_name_are_scanned(repo, name, make):
    api, repo_id = repo
    assert "posix.system" in refused(api, repo_id, make(), name)


def test_unscanned_content_never_reads_safe(hub, repo):
    api, repo_id = repo
    seven_zip = b"7z\xbc\xaf\x27\x1c" + seeded_bytes(500, seed=7)
    api.upload_file(path_or_fileobj=seven_zip, path_in_repo="weights.7z", repo_id=repo_id)
    (entry,) = api.get_paths_info(repo_id, ["weights.7z"], expand=True)
    assert entry.security.safe is False and entry.security.status == "unscanned"
    page = httpx.get(f"{hub.url}/{repo_id}").text
    assert 'class="scan-unscanned"' in page


def test_verdicts_are_found_by_blob_id_and_files_without_one_read_unscanned(hub, repo):
    api, repo_id = repo
    api.upload_file(path_or_fileobj=b"plain text", path_in_repo="a.txt", repo_id=repo_id)
    (entry,) = api.get_paths_info(repo_id, ["a.txt"], expand=True)
    assert entry.security.safe
    assert [k for k in _scan_keys(hub) if k.endswith(entry.blob_id)], "a verdict was recorded under the blob id"
    (gitattributes,) = api.get_paths_info(repo_id, [".gitattributes"], expand=True)
    assert gitattributes.security.safe
    # a file that reached the repo without passing the scanner (e.g. data from an older release)
    ref = RepoRef.parse("model", repo_id)
    staged = hub.storage.stage_bytes(b"never scanned " + seeded_bytes(64, seed=5))
    hub.storage.repos.commit(
        ref, "main", [AddFile("b.raw", staged)], author="alice", summary="raw", store_lfs=None, lfs_threshold=1 << 30
    )
    (raw,) = api.get_paths_info(repo_id, ["b.raw"], expand=True)
    assert raw.security.safe is False and raw.security.status == "unscanned"


def _scan_keys(hub) -> list[str]:
    import sqlalchemy as sa

    from hub_server.storage import schema

    with hub.storage.meta.engine.connect() as conn:
        return list(conn.execute(sa.select(schema.scans.c.key)).scalars())


# --------------------------------------------------------------------------- 6. binaries that are not pickles


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_binaries_and_gguf_are_not_pickles(repo, seed):
    api, repo_id = repo
    gguf = b"GGUF\x03\x00\x00\x00" + seeded_bytes(4096, seed=seed)
    files = {"weights.bin": seeded_bytes(2048, seed=seed), "model.gguf.bin": gguf, "raw.pt": seeded_bytes(8192, seed)}
    ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=d) for p, d in files.items()]
    api.create_commit(repo_id, ops, commit_message="binaries")
    for entry in api.get_paths_info(repo_id, list(files), expand=True):
        assert entry.security.safe and entry.security.pickle_import_scan is None, entry
