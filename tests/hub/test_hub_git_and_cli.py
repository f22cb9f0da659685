"""Read-only ``git clone`` over HTTP, and the server's command line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hub_server import HubStorage
from hub_server.cli import main


def _git(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("protocol", ["smart", "dumb"])
def test_git_clone(hub, make_api, alice, repo_name, tmp_path, protocol):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="dir/hello.txt", repo_id=repo_id)
    head = api.upload_file(path_or_fileobj=b"v2", path_in_repo="v.txt", repo_id=repo_id).oid
    api.create_tag(repo_id, tag="v1")
    dest = tmp_path / "clone"
    extra = ["-c", "protocol.version=0", "-c", "http.smartHttp=false"] if protocol == "dumb" else []
    clone = _git(*extra, "clone", f"{hub.url}/{repo_id}", str(dest))
    assert clone.returncode == 0, clone.stderr
    assert (dest / "dir" / "hello.txt").read_text() == "hello"
    assert _git("rev-parse", "HEAD", cwd=dest).stdout.strip() == head
    assert _git("rev-parse", "v1^{commit}", cwd=dest).stdout.strip() == head
    assert _git("log", "--format=%s", cwd=dest).stdout.splitlines()[-1] == "initial commit"
    assert _git("fsck", cwd=dest).returncode == 0


def test_git_clone_private_needs_token(hub, make_api, alice, repo_name, tmp_path):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id, private=True)
    anon = _git("clone", f"{hub.url}/{repo_id}", str(tmp_path / "a"))
    assert anon.returncode != 0
    host = hub.url.split("://", 1)[1]
    authed = _git("clone", f"http://alice:{alice}@{host}/{repo_id}", str(tmp_path / "b"))
    assert authed.returncode == 0, authed.stderr
    assert (tmp_path / "b" / ".gitattributes").exists()


def test_git_push_is_refused(hub, make_api, alice, repo_name, tmp_path):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    host = hub.url.split("://", 1)[1]
    dest = tmp_path / "c"
    assert _git("clone", f"http://alice:{alice}@{host}/{repo_id}", str(dest)).returncode == 0
    (dest / "x.txt").write_text("x")
    _git("add", "x.txt", cwd=dest)
    _git("-c", "user.name=a", "-c", "user.email=a@b", "commit", "-m", "x", cwd=dest)
    assert _git("push", "origin", "HEAD:main", cwd=dest).returncode != 0
    assert api.list_repo_files(repo_id) == [".gitattributes"]


def test_add_user_prints_token_last(tmp_path, capsys):
    assert main(["add-user", "frank", "--root", str(tmp_path)]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert HubStorage(tmp_path).token_info(token).user == "frank"


def test_cli_errors_and_help(tmp_path, capsys):
    assert main(["add-user", "bad--name", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1
    for argv in (["--help"], ["serve", "--help"], ["add-user", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
        assert "--root" in capsys.readouterr().out or argv == ["--help"]


def test_python_m_hub_server(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "hub_server", "add-user", "gina", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    assert HubStorage(tmp_path).token_info(out.stdout.strip().splitlines()[-1]).user == "gina"
