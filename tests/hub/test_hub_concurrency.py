"""Concurrent commits: each one lands or gets a conflict; history stays linear and fsck-clean."""

from __future__ import annotations

import threading

from hubtools import git_fsck
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError

from hub_server import RepoRef


def test_eight_clients_commit_at_once(hub, make_api, alice, repo_name):
    repo_id = f"alice/{repo_name}"
    make_api(alice).create_repo(repo_id)
    start_sha = make_api(alice).model_info(repo_id).sha
    barrier = threading.Barrier(8)
    landed: dict[int, str] = {}
    conflicts: dict[int, int] = {}
    unexpected: list[BaseException] = []

    def worker(i: int) -> None:
        api = make_api(alice)
        barrier.wait()
        try:
            # Half the clients pin the parent they saw: at most one of those can win a race.
            parent = start_sha if i % 2 else None
            info = api.create_commit(
                repo_id,
                operations=[CommitOperationAdd(f"client-{i}.txt", f"from {i}".encode())],
                commit_message=f"client {i}",
                parent_commit=parent,
            )
            landed[i] = info.oid
        except HfHubHTTPError as exc:
            if exc.response is not None and exc.response.status_code in (409, 412):
                conflicts[i] = exc.response.status_code
            else:
                unexpected.append(exc)
        except BaseException as exc:  # noqa: BLE001
            unexpected.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not unexpected, unexpected
    assert len(landed) + len(conflicts) == 8
    assert all(i % 2 for i in conflicts), "only parent-pinned commits may conflict"
    api = make_api(alice)
    history = api.list_repo_commits(repo_id)
    shas = [c.commit_id for c in history]
    assert set(landed.values()) <= set(shas)
    assert len(shas) == len(landed) + 1 and shas[-1] == start_sha
    files = set(api.list_repo_files(repo_id))
    assert files == {".gitattributes", *(f"client-{i}.txt" for i in landed)}
    storage = hub.storage
    ref = RepoRef.parse("model", repo_id)
    commits, _ = storage.list_commits(ref, "main", 0, 100)
    assert all(len(c.parents) <= 1 for c in commits)
    fsck = git_fsck(storage.git_dir(ref))
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
