"""Several hub processes sharing one PostgreSQL database, one S3 bucket and one git volume, behind nginx,
are one hub: concurrent pushers through either replica, downloads served by the object store, a replica
killed mid-upload without losing anything."""

from __future__ import annotations

import hashlib
import secrets
import signal
import subprocess
import sys
import threading

import httpx2 as httpx
import pytest
from backends import free_port, nginx, start_hub
from hubtools import git_fsck, seeded_bytes
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from hub_server import HubSettings, HubStorage, RepoRef

pytestmark = pytest.mark.slow


class Cluster:
    """Two replicas and a balancer; ``url`` is the balancer."""

    def __init__(self, root, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.ports = [free_port(), free_port()]
        self.procs = [start_hub(root, port, "--lfs-mode", "always", env=env) for port in self.ports]

    def kill(self, i: int) -> None:
        """SIGKILL replica ``i``."""
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait(30)

    def restart(self, i: int) -> None:
        """Start replica ``i`` again on its port."""
        self.procs[i] = start_hub(self.root, self.ports[i], "--lfs-mode", "always", env=self.env)

    def stop(self) -> None:
        """Stop every replica."""
        for proc in self.procs:
            proc.kill()
            proc.wait(30)

    def storage(self) -> HubStorage:
        """The shared storage, opened from the test process."""
        settings = HubSettings(
            root=self.root, database_url=self.env["HUB_DATABASE_URL"], object_store=self.env["HUB_OBJECT_STORE"]
        )
        return HubStorage(settings=settings)


@pytest.fixture(scope="module")
def cluster(hub_backends, tmp_path_factory):
    if hub_backends is None:
        pytest.skip("runs in the --hub-backend postgres-s3 pass")
    env = {**hub_backends.hub_env(), "HUB_SECRET_KEY": secrets.token_hex(32)}
    root = tmp_path_factory.mktemp("shared-volume")
    add = [sys.executable, "-m", "hub_server", "add-user", "rita", "--root", str(root)]
    token = subprocess.run(add, env={**env}, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
    running = Cluster(root, env)
    try:
        with nginx(running.ports) as balancer:
            running.url, running.token, running.balancer = balancer.url, token, balancer
            yield running
    finally:
        running.stop()


def test_concurrent_pushers_through_two_replicas(cluster, repo_name):
    api = HfApi(endpoint=cluster.url, token=cluster.token)
    repo_id = f"rita/{repo_name}"
    api.create_repo(repo_id)
    start = api.model_info(repo_id).sha
    barrier = threading.Barrier(8)
    landed, conflicts, unexpected = {}, {}, []

    def push(i: int) -> None:
        client = HfApi(endpoint=cluster.url, token=cluster.token)
        barrier.wait()
        try:
            info = client.create_commit(
                repo_id,
                operations=[CommitOperationAdd(f"c{i}.txt", f"{i}".encode())],
                commit_message=f"client {i}",
                parent_commit=start if i % 2 else None,
            )
            landed[i] = info.oid
        except HfHubHTTPError as exc:
            if exc.response is not None and exc.response.status_code == 412:
                conflicts[i] = 412
            else:
                unexpected.append(exc)

    threads = [threading.Thread(target=push, args=(i,), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not unexpected, unexpected
    assert len(landed) + len(conflicts) == 8 and landed
    upstreams = {row[4] for row in cluster.balancer.access_log() if "/commit/" in row[1]}
    assert len(upstreams) == 2, "both replicas took commits"
    storage = cluster.storage()
    try:
        ref = RepoRef.parse("model", repo_id)
        commits, total = storage.list_commits(ref, "main", 0, 100)
        assert total == len(landed) + 1 and all(len(c.parents) <= 1 for c in commits)
        assert set(landed.values()) <= {c.id for c in commits}
        fsck = git_fsck(storage.git_dir(ref))
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    finally:
        storage.close()


def test_a_large_download_is_served_by_the_object_store(cluster, repo_name, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)  # the LFS path of the client
    data = seeded_bytes(200 * 1024 * 1024, seed=11)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    api = HfApi(endpoint=cluster.url, token=cluster.token)
    repo_id = f"rita/{repo_name}"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=str(source), path_in_repo="weights.bin", repo_id=repo_id)
    before = len(cluster.balancer.access_log())
    path = hf_hub_download(repo_id, "weights.bin", endpoint=cluster.url, token=cluster.token, cache_dir=tmp_path / "c")
    with open(path, "rb") as fh:
        assert hashlib.file_digest(fh, "sha256").hexdigest() == hashlib.sha256(data).hexdigest()
    rows = cluster.balancer.access_log()[before:]
    sent = sum(int(row[3]) for row in rows)
    assert any(row[0] == "GET" and "/resolve/" in row[1] and row[2] == "302" for row in rows), rows
    assert sent < len(data) / 1000, f"the replicas sent {sent} bytes for a {len(data)}-byte file"


def test_a_replica_killed_during_uploads_loses_nothing(cluster, repo_name):
    api = HfApi(endpoint=cluster.url, token=cluster.token)
    repo_id = f"rita/{repo_name}"
    api.create_repo(repo_id)
    landed = threading.Semaphore(0)
    done: dict[str, str] = {}
    failures: list[BaseException] = []

    def uploader(worker: int) -> None:
        client = HfApi(endpoint=cluster.url, token=cluster.token)
        for n in range(6):
            name = f"w{worker}/f{n}.bin"
            for _attempt in range(10):  # the client's retry: through nginx, to whichever replica is up
                try:
                    client.upload_file(
                        path_or_fileobj=seeded_bytes(64 * 1024, seed=worker * 100 + n),
                        path_in_repo=name,
                        repo_id=repo_id,
                    )
                    done[name] = "ok"
                    landed.release()
                    break
                except Exception as exc:  # noqa: BLE001 - connection resets and 502s while a replica dies
                    error = exc
            else:
                failures.append(error)

    threads = [threading.Thread(target=uploader, args=(w,), daemon=True) for w in range(4)]
    for t in threads:
        t.start()
    for _ in range(4):
        assert landed.acquire(timeout=300)
    cluster.kill(0)
    for t in threads:
        t.join(600)
    assert not failures, failures
    files = set(api.list_repo_files(repo_id))
    assert set(done) <= files and len(done) == 24
    cluster.restart(0)
    direct = httpx.get(f"http://127.0.0.1:{cluster.ports[0]}/api/models/{repo_id}", timeout=30)
    assert direct.status_code == 200 and direct.json()["sha"] == api.model_info(repo_id).sha
    storage = cluster.storage()
    try:
        fsck = git_fsck(storage.git_dir(RepoRef.parse("model", repo_id)))
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    finally:
        storage.close()
