"""Tokens and visibility: login with the real CLI, write refusals, private repos."""

from __future__ import annotations

import hashlib

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from hubtools import client_env, run_cli
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from hub_server.storage import schema


def test_hf_auth_login_and_whoami(hub, alice, tmp_path):
    env = client_env(hub.url, tmp_path / "home")
    login = run_cli(["auth", "login", "--token", alice], env)
    assert login.returncode == 0, login.stderr
    assert (tmp_path / "home" / "token").read_text().strip() == alice
    who = run_cli(["auth", "whoami"], env)
    assert who.returncode == 0 and "alice" in who.stdout
    bad = run_cli(["auth", "login", "--token", "hf_" + "x" * 34], client_env(hub.url, tmp_path / "other"))
    assert bad.returncode != 0


def test_whoami_identifies_each_token(make_api, alice, bob):
    assert make_api(alice).whoami()["name"] == "alice"
    assert make_api(bob).whoami()["name"] == "bob"
    with pytest.raises(HfHubHTTPError) as exc:
        make_api("hf_notatoken").whoami()
    assert exc.value.response.status_code == 401


def test_write_without_token_is_401(hub, make_api, alice, repo_name):
    make_api(alice).create_repo(repo_name)
    anon = make_api(None)
    with pytest.raises(HfHubHTTPError) as exc:
        anon.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"alice/{repo_name}")
    assert exc.value.response.status_code == 401
    r = httpx.post(f"{hub.url}/api/repos/create", json={"name": "anon-repo"})
    assert r.status_code == 401 and r.headers["x-error-code"]
    assert make_api(alice).list_repo_files(f"alice/{repo_name}") == [".gitattributes"]


def test_other_users_token_is_403(make_api, alice, bob, repo_name):
    make_api(alice).create_repo(repo_name)
    intruder = make_api(bob)
    repo_id = f"alice/{repo_name}"
    for attempt in (
        lambda: intruder.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id),
        lambda: intruder.create_branch(repo_id, branch="evil"),
        lambda: intruder.delete_file(".gitattributes", repo_id=repo_id),
        lambda: intruder.delete_repo(repo_id),
        lambda: intruder.create_repo(repo_id),
    ):
        with pytest.raises(HfHubHTTPError) as exc:
            attempt()
        assert exc.value.response.status_code == 403
    assert make_api(alice).list_repo_files(repo_id) == [".gitattributes"]
    assert [b.name for b in make_api(alice).list_repo_refs(repo_id).branches] == ["main"]


def test_read_token_cannot_write(hub, make_api, repo_name):
    owner_write = hub.add_user("carol")
    reader = hub.add_user("carol", role="read")
    make_api(owner_write).create_repo(repo_name)
    with pytest.raises(HfHubHTTPError) as exc:
        make_api(reader).upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"carol/{repo_name}")
    assert exc.value.response.status_code == 403


def test_private_repo_is_invisible_to_others(hub, make_api, alice, bob, repo_name, tmp_path):
    owner = make_api(alice)
    repo_id = f"alice/{repo_name}"
    owner.create_repo(repo_id, private=True)
    owner.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id=repo_id)
    assert owner.model_info(repo_id).private is True
    for api in (make_api(bob), make_api(None)):
        with pytest.raises(RepositoryNotFoundError):
            api.model_info(repo_id)
        assert not api.repo_exists(repo_id)
    for token in (bob, False):
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(repo_id, "s.txt", endpoint=hub.url, token=token, cache_dir=tmp_path / "c")
    r = httpx.get(f"{hub.url}/{repo_id}/resolve/main/s.txt")
    assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"
    assert [m.id for m in make_api(None).list_models(author="alice") if m.id == repo_id] == []
    assert hf_hub_download(repo_id, "s.txt", endpoint=hub.url, token=alice, cache_dir=tmp_path / "c2")


def test_visibility_can_change(make_api, alice, repo_name):
    owner = make_api(alice)
    repo_id = f"alice/{repo_name}"
    owner.create_repo(repo_id, private=True)
    assert not make_api(None).repo_exists(repo_id)
    owner.update_repo_settings(repo_id, private=False)
    assert make_api(None).model_info(repo_id).private is False


def test_tokens_are_stored_hashed(hub, alice):
    with hub.storage.meta.engine.connect() as conn:
        rows = [" ".join(map(str, row)) for row in conn.execute(sa.select(schema.tokens))]
    assert rows and not any(alice in row for row in rows)
    assert any(hashlib.sha256(alice.encode()).hexdigest() in row for row in rows)
    assert hub.storage.token_info(alice).user == "alice"
