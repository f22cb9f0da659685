"""A server killed with SIGKILL mid-upload restarts at its last good commit, fsck-clean."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import time

import httpx2 as httpx
import pytest
from backends import free_port, start_hub
from hubtools import git_fsck
from huggingface_hub import HfApi

from hub_server import HubStorage, RepoRef


def _body(data: bytes, kill_after: int | None, pid: int | None):
    yield json.dumps({"key": "header", "value": {"summary": "big upload", "description": ""}}).encode() + b"\n"
    yield b'{"key": "file", "value": {"path": "big.bin", "encoding": "base64", "content": "'
    encoded = base64.b64encode(data)
    sent = 0
    for i in range(0, len(encoded), 1 << 20):
        yield encoded[i : i + (1 << 20)]
        sent += 1 << 20
        if kill_after is not None and sent >= kill_after:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
    yield b'"}}\n'


@pytest.mark.slow
def test_kill_during_large_upload(tmp_path):
    root = tmp_path / "root"
    token = (
        subprocess.run(
            [sys.executable, "-m", "hub_server", "add-user", "erin", "--root", str(root)],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_hub(root, port)
    try:
        api = HfApi(endpoint=url, token=token)
        api.create_repo("crash")
        good = api.upload_file(path_or_fileobj=b"before", path_in_repo="a.txt", repo_id="erin/crash").oid
        data = random.Random(0).randbytes(24 * 1024 * 1024)
        headers = {"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"}
        with pytest.raises(httpx.TransportError):
            httpx.post(
                f"{url}/api/models/erin/crash/commit/main",
                content=_body(data, kill_after=16 * 1024 * 1024, pid=proc.pid),
                headers=headers,
                timeout=60,
            )
        assert proc.wait(10) == -signal.SIGKILL
        left = {p for p in (root / "tmp").iterdir() if any(p.iterdir())}
        assert left, "the interrupted upload left its temporary file"

        proc = start_hub(root, port)
        assert not left & set((root / "tmp").iterdir()), "a dead process's temporary files are cleared on start"
        assert api.model_info("erin/crash").sha == good
        git_dir = HubStorage(root).git_dir(RepoRef.parse("model", "erin/crash"))
        fsck = git_fsck(git_dir)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr

        r = httpx.post(
            f"{url}/api/models/erin/crash/commit/main", content=_body(data, None, None), headers=headers, timeout=120
        )
        assert r.status_code == 200, r.text
        assert api.model_info("erin/crash").sha == r.json()["commitOid"]
        got = httpx.get(
            f"{url}/erin/crash/resolve/main/big.bin", headers=headers, timeout=60, follow_redirects=True
        ).content
        assert got == data
        assert git_fsck(git_dir).returncode == 0
    finally:
        proc.kill()
        proc.wait()
