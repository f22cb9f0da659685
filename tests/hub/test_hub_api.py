"""The hub against the real huggingface_hub client: uploads, downloads, revisions, refs, commits, errors."""

from __future__ import annotations

import hashlib

import httpx2 as httpx
import pytest
from hubtools import seeded_bytes
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)


def _download(hub, repo_id, filename, tmp_path, token, **kw) -> bytes:
    path = hf_hub_download(repo_id, filename, endpoint=hub.url, token=token, cache_dir=tmp_path / "cache", **kw)
    with open(path, "rb") as fh:
        return fh.read()


def test_create_repo_is_idempotent_and_has_main(make_api, alice, repo_name):
    api = make_api(alice)
    url = api.create_repo(repo_name)
    assert url.repo_id == f"alice/{repo_name}"
    again = api.create_repo(repo_name, exist_ok=True)
    assert again.repo_id == url.repo_id
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_repo(repo_name)
    assert exc.value.response.status_code == 409
    info = api.model_info(f"alice/{repo_name}")
    assert [s.rfilename for s in info.siblings] == [".gitattributes"]
    assert len(info.sha) == 40 and int(info.sha, 16) >= 0
    assert api.list_repo_refs(f"alice/{repo_name}").branches[0].target_commit == info.sha


def test_upload_download_and_revisions(hub, make_api, alice, repo_name, tmp_path):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    first = api.upload_file(path_or_fileobj=b"v1", path_in_repo="dir/file.txt", repo_id=repo_id)
    api.create_tag(repo_id, tag="v1", revision=first.oid)
    second = api.upload_file(path_or_fileobj=b"v2", path_in_repo="dir/file.txt", repo_id=repo_id)
    assert first.oid != second.oid
    assert _download(hub, repo_id, "dir/file.txt", tmp_path, alice) == b"v2"
    assert _download(hub, repo_id, "dir/file.txt", tmp_path, alice, revision=first.oid) == b"v1"
    assert _download(hub, repo_id, "dir/file.txt", tmp_path, alice, revision="v1") == b"v1"
    assert api.model_info(repo_id).sha == second.oid
    assert api.model_info(repo_id, revision="v1").sha == first.oid
    commits = api.list_repo_commits(repo_id)
    assert [c.commit_id for c in commits[:2]] == [second.oid, first.oid]
    assert commits[-1].title == "initial commit"


def test_branch_upload_and_delete(hub, make_api, alice, repo_name, tmp_path):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    api.create_branch(repo_id, branch="dev")
    api.create_branch(repo_id, branch="dev", exist_ok=True)
    api.upload_file(path_or_fileobj=b"on dev", path_in_repo="x.txt", repo_id=repo_id, revision="dev")
    assert api.file_exists(repo_id, "x.txt", revision="dev")
    assert not api.file_exists(repo_id, "x.txt")
    refs = api.list_repo_refs(repo_id)
    assert {b.name for b in refs.branches} == {"main", "dev"}
    api.delete_branch(repo_id, branch="dev")
    assert {b.name for b in api.list_repo_refs(repo_id).branches} == {"main"}
    with pytest.raises(RevisionNotFoundError):
        _download(hub, repo_id, "x.txt", tmp_path, alice, revision="dev")


def test_tags_create_and_delete(make_api, alice, repo_name):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    sha = api.model_info(repo_id).sha
    api.create_tag(repo_id, tag="v1.0", tag_message="release")
    api.create_tag(repo_id, tag="light")
    tags = {t.name: t.target_commit for t in api.list_repo_refs(repo_id).tags}
    assert tags == {"v1.0": sha, "light": sha}
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_tag(repo_id, tag="light")
    assert exc.value.response.status_code == 409
    api.delete_tag(repo_id, tag="light")
    assert [t.name for t in api.list_repo_refs(repo_id).tags] == ["v1.0"]


def test_upload_folder_delete_file_and_folder(make_api, alice, repo_name, tmp_path):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    folder = tmp_path / "up"
    (folder / "sub" / "deep").mkdir(parents=True)
    files = {"a.txt": b"a", "sub/b.txt": b"b", "sub/deep/c.json": b"{}", "README.md": b"---\nlicense: mit\n---\n# hi\n"}
    for rel, data in files.items():
        (folder / rel).write_bytes(data)
    api.upload_folder(folder_path=folder, repo_id=repo_id)
    assert sorted(api.list_repo_files(repo_id)) == sorted([".gitattributes", *files])
    api.delete_file("a.txt", repo_id=repo_id)
    api.delete_folder("sub", repo_id=repo_id)
    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "README.md"]
    with pytest.raises(EntryNotFoundError):
        api.delete_file("missing.txt", repo_id=repo_id)


def test_snapshot_download_at_sha(hub, make_api, alice, repo_name, tmp_path):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    ops = [CommitOperationAdd(f"f{i}.txt", f"content {i}".encode()) for i in range(5)]
    ops.append(CommitOperationAdd("weights.bin", seeded_bytes(3000, seed=1)))
    info = api.create_commit(repo_id, operations=ops, commit_message="many files")
    api.upload_file(path_or_fileobj=b"later", path_in_repo="later.txt", repo_id=repo_id)
    path = snapshot_download(repo_id, revision=info.oid, endpoint=hub.url, token=alice, cache_dir=tmp_path / "c")
    got = sorted(p.name for p in __import__("pathlib").Path(path).iterdir())
    assert got == sorted([".gitattributes", *[op.path_in_repo for op in ops]])
    assert (tmp_path / "c").exists() and info.oid in path


def test_lfs_metadata_matches_content(hub, make_api, alice, repo_name, tmp_path):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    data = seeded_bytes(5000, seed=2)
    api.upload_file(path_or_fileobj=data, path_in_repo="model.safetensors", repo_id=repo_id)
    meta = get_hf_file_metadata(hf_hub_url(repo_id, "model.safetensors", endpoint=hub.url), token=alice)
    assert meta.etag == hashlib.sha256(data).hexdigest()
    assert meta.size == len(data)
    assert meta.commit_hash == api.model_info(repo_id).sha
    (entry,) = api.get_paths_info(repo_id, ["model.safetensors"])
    assert entry.lfs is not None and entry.lfs.sha256 == meta.etag and entry.size == len(data)
    assert _download(hub, repo_id, "model.safetensors", tmp_path, alice) == data


def test_range_requests_and_head(hub, make_api, alice, repo_name):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    data = bytes(range(256)) * 40
    api.upload_file(path_or_fileobj=data, path_in_repo="blob.dat", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"0123456789", path_in_repo="small.txt", repo_id=repo_id)
    headers = {"authorization": f"Bearer {alice}"}
    for name, content in (("blob.dat", data), ("small.txt", b"0123456789")):
        url = hf_hub_url(repo_id, name, endpoint=hub.url)
        head = httpx.head(url, headers=headers)
        assert head.status_code == 200 and int(head.headers["content-length"]) == len(content)
        part = httpx.get(url, headers={**headers, "range": "bytes=3-"})
        assert part.status_code == 206 and part.content == content[3:]
        assert part.headers["content-range"] == f"bytes 3-{len(content) - 1}/{len(content)}"
        tail = httpx.get(url, headers={**headers, "range": "bytes=-4"})
        assert tail.status_code == 206 and tail.content == content[-4:]
        bad = httpx.get(url, headers={**headers, "range": f"bytes={len(content)}-"})
        assert bad.status_code == 416


def test_commit_list_is_paginated(hub, make_api, alice, repo_name):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    shas = [
        api.upload_file(path_or_fileobj=f"{i}".encode(), path_in_repo="n.txt", repo_id=repo_id).oid for i in range(7)
    ]
    page = httpx.get(f"{hub.url}/api/models/{repo_id}/commits/main", params={"limit": 3})
    assert len(page.json()) == 3 and 'rel="next"' in page.headers["link"]
    assert page.headers["link"].startswith(f"<{hub.url}/")
    commits = api.list_repo_commits(repo_id)
    assert [c.commit_id for c in commits[:7]] == shas[::-1]
    assert len(commits) == 8


def test_error_codes_map_to_client_exceptions(hub, make_api, alice, repo_name, tmp_path):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("alice/does-not-exist")
    assert api.repo_exists(repo_id) and not api.repo_exists("alice/does-not-exist")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo_id, revision="nope")
    with pytest.raises(EntryNotFoundError):
        _download(hub, repo_id, "missing.txt", tmp_path, alice)
    with pytest.raises(RevisionNotFoundError):
        _download(hub, repo_id, ".gitattributes", tmp_path, alice, revision="0" * 40)
    with pytest.raises(RepositoryNotFoundError):
        _download(hub, "alice/does-not-exist", "x", tmp_path, alice)
    api.delete_repo(repo_id)
    api.delete_repo(repo_id, missing_ok=True)
    assert not api.repo_exists(repo_id)


def test_revision_with_slash_is_quoted(hub, make_api, alice, repo_name, tmp_path):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    api.create_branch(repo_id, branch="feature/x")
    api.upload_file(path_or_fileobj=b"feat", path_in_repo="f.txt", repo_id=repo_id, revision="feature/x")
    assert _download(hub, repo_id, "f.txt", tmp_path, alice, revision="feature/x") == b"feat"
    assert api.list_repo_files(repo_id, revision="feature/x") == [".gitattributes", "f.txt"]
    assert api.list_repo_commits(repo_id, revision="feature/x")[0].title.startswith("Upload f.txt")


def test_stale_parent_commit_is_a_412(make_api, alice, repo_name):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    old = api.model_info(repo_id).sha
    head = api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id=repo_id).oid
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_commit(
            repo_id, operations=[CommitOperationAdd("b.txt", b"2")], commit_message="late", parent_commit=old
        )
    assert exc.value.response.status_code == 412
    assert api.model_info(repo_id).sha == head
    ok = api.create_commit(
        repo_id, operations=[CommitOperationAdd("b.txt", b"2")], commit_message="x", parent_commit=head
    )
    assert api.model_info(repo_id).sha == ok.oid


def test_copy_and_delete_operations(make_api, alice, repo_name):
    from huggingface_hub import CommitOperationCopy

    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=seeded_bytes(100, seed=3), path_in_repo="w.safetensors", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"text", path_in_repo="t.txt", repo_id=repo_id)
    api.create_commit(
        repo_id,
        operations=[
            CommitOperationCopy("w.safetensors", "copy/w.safetensors"),
            CommitOperationCopy("t.txt", "copy/t.txt"),
            CommitOperationDelete("t.txt"),
        ],
        commit_message="copy",
    )
    info = {e.path: e for e in api.get_paths_info(repo_id, ["w.safetensors", "copy/w.safetensors", "copy/t.txt"])}
    assert info["copy/w.safetensors"].lfs.sha256 == info["w.safetensors"].lfs.sha256
    assert not api.file_exists(repo_id, "t.txt") and api.file_exists(repo_id, "copy/t.txt")


def test_urls_use_the_request_host(hub, alice, repo_name):
    port = hub.url.rsplit(":", 1)[1]
    url = f"http://localhost:{port}"
    r = httpx.post(f"{url}/api/repos/create", json={"name": repo_name}, headers={"authorization": f"Bearer {alice}"})
    assert r.status_code == 200 and r.json()["url"] == f"{url}/alice/{repo_name}"
    r = httpx.post(f"{url}/api/repos/create", json={"name": repo_name}, headers={"authorization": f"Bearer {alice}"})
    assert r.status_code == 409 and r.json()["url"] == f"{url}/alice/{repo_name}"
    assert r.headers["x-error-code"]


def test_validate_yaml(hub):
    ok = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": "---\nlicense: mit\n---\nhi", "repoType": "model"})
    assert ok.status_code == 200 and ok.json() == {"errors": [], "warnings": []}
    bad = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": "---\na: [\n---\nhi", "repoType": "model"})
    assert bad.status_code == 400 and bad.json()["errors"]


def test_card_metadata_is_checked_before_a_commit(hub, make_api, alice, repo_name):
    """The client asks validate-yaml before committing a README: wrong field types fail early, naming the field;
    a card without metadata commits with the Hub's warning."""
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    before = api.model_info(repo_id).sha
    bad_card = b"\n---\nlicense: mit\nmodel-index: foo\n---\n# Card\n"  # blank lines may come first
    with pytest.raises(ValueError, match='(?s)Invalid metadata in README.md.*"model-index" must be a list'):
        api.upload_file(path_or_fileobj=bad_card, path_in_repo="README.md", repo_id=repo_id)
    assert api.model_info(repo_id).sha == before
    with pytest.warns(UserWarning, match="empty or missing yaml metadata"):
        api.upload_file(path_or_fileobj=b"# A card without metadata\n", path_in_repo="README.md", repo_id=repo_id)
    # YAML 1.1 reads `no` (Norwegian) as false and 2024 as a number: still valid list items
    good = b"---\nlanguage: [en, no]\ntags: [resnet, 2024]\nlicense: apache-2.0\n---\n# Card\n"
    api.upload_file(path_or_fileobj=good, path_in_repo="README.md", repo_id=repo_id)
    wrong = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": "---\ntags: [{a: 1}]\nlicense: [mit]\n---\n"})
    assert wrong.status_code == 400
    assert [e["message"].split(" must")[0] for e in wrong.json()["errors"]] == ['"license"', '"tags"']


def test_datasets_are_separate(hub, make_api, alice, repo_name, tmp_path):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="data.csv", repo_id=repo_id, repo_type="dataset")
    assert not api.repo_exists(repo_id)
    assert api.list_repo_files(repo_id, repo_type="dataset") == [".gitattributes", "data.csv"]
    assert _download(hub, repo_id, "data.csv", tmp_path, alice, repo_type="dataset") == b"a,b\n1,2\n"
