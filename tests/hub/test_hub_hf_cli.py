"""The real ``hf`` CLI against the hub: upload, download at a revision."""

from __future__ import annotations

from hubtools import client_env, run_cli


def test_hf_upload_and_download_revision(hub, make_api, alice, repo_name, tmp_path):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    env = client_env(hub.url, tmp_path / "home", token=alice)
    src = tmp_path / "src"
    src.mkdir()
    (src / "notes.txt").write_text("first")
    up = run_cli(["upload", repo_id, str(src / "notes.txt"), "notes.txt"], env)
    assert up.returncode == 0, up.stderr
    first = api.model_info(repo_id).sha
    (src / "notes.txt").write_text("second")
    (src / "extra.json").write_text("{}")
    up = run_cli(["upload", repo_id, str(src), ".", "--commit-message", "folder upload"], env)
    assert up.returncode == 0, up.stderr
    assert api.list_repo_commits(repo_id)[0].title == "folder upload"

    old = run_cli(["download", repo_id, "notes.txt", "--revision", first, "--local-dir", str(tmp_path / "old")], env)
    assert old.returncode == 0, old.stderr
    assert (tmp_path / "old" / "notes.txt").read_text() == "first"
    new = run_cli(["download", repo_id, "--local-dir", str(tmp_path / "new")], env)
    assert new.returncode == 0, new.stderr
    assert (tmp_path / "new" / "notes.txt").read_text() == "second"
    assert (tmp_path / "new" / "extra.json").exists()
