"""A hub that cannot start says why in one line and exits 2: unreachable database, missing bucket, refused
credentials, a schema written by a newer release."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from backends import AWS_ENV, free_port

from hub_server.storage.database import open_metadata


def _hub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "AWS_"))}
    return subprocess.run(
        [sys.executable, "-m", "hub_server", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
    )


def _one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@contextlib.contextmanager
def _s3_server(*, enforce_auth: bool):
    """moto's standalone S3 server in a child process (with IAM checks when ``enforce_auth``)."""
    binary = Path(sys.executable).parent / "moto_server"
    if not binary.exists():
        pytest.skip("moto_server is not installed")
    port = free_port()
    env = {**os.environ, **({"INITIAL_NO_AUTH_ACTION_COUNT": "0"} if enforce_auth else {})}
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        from backends import _wait_for_port

        _wait_for_port(port)
        yield {**AWS_ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    finally:
        proc.kill()
        proc.wait()


def test_unreachable_database(tmp_path):
    url = f"postgresql://hub@127.0.0.1:{free_port()}/hub"
    result = _hub("serve", "--root", str(tmp_path), "--port", str(free_port()), "--database-url", url)
    _one_line_error(result, "cannot use the database", url)


def test_a_database_url_without_its_driver_or_scheme(tmp_path):
    result = _hub("add-user", "ann", "--root", str(tmp_path), "--database-url", "nosuchdb://x/y")
    _one_line_error(result, "invalid database URL")


def test_missing_bucket(tmp_path):
    with _s3_server(enforce_auth=False) as env:
        result = _hub("add-user", "ann", "--root", str(tmp_path), "--object-store", "s3://no-such-bucket/p", env=env)
    _one_line_error(result, "bucket 'no-such-bucket' does not exist")


def test_refused_credentials(tmp_path):
    with _s3_server(enforce_auth=True) as env:
        result = _hub("add-user", "ann", "--root", str(tmp_path), "--object-store", "s3://some-bucket", env=env)
    _one_line_error(result, "denied", "credentials")


def test_a_schema_from_a_newer_release(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    open_metadata(f"sqlite:///{root / 'hub.db'}", lock_dir=root / "locks").engine.dispose()
    engine = sa.create_engine(f"sqlite:///{root / 'hub.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0999_from_the_future'"))
    engine.dispose()
    result = _hub("serve", "--root", str(root), "--port", str(free_port()))
    _one_line_error(result, "newer than this hub", "0999_from_the_future")


def test_an_invalid_object_store_setting(tmp_path):
    result = _hub("add-user", "ann", "--root", str(tmp_path), "--object-store", "ftp://x/y")
    _one_line_error(result, "Invalid object store")
