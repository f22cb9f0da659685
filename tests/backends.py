"""Real backends for the hub tests, started inside the test run: PostgreSQL (the distribution's server, run
from a temp dir on a loopback port), an S3-API server (moto's server mode) and nginx as a load balancer."""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

S3_BUCKET = "hub-test"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    which = shutil.which("pg_ctl")
    return Path(which).parent if which else None


def _wait_for_port(port: int, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


class PostgresServer:
    """A throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``), as an unprivileged user when run as root."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.user = "postgres" if os.geteuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="hub-pg-"))
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.port = free_port()
        self._counter = itertools.count()

    def _run(self, *args: str) -> None:
        subprocess.run([str(self.bin / args[0]), *args[1:]], check=True, capture_output=True, user=self.user)

    def start(self) -> PostgresServer:
        """Create the cluster and start the server on 127.0.0.1 (no fsync: test data only)."""
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "hub", "--no-sync", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c max_connections=400"
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.dir / "server.log"), "-w", "start")
        return self

    def stop(self) -> None:
        """Stop the server and remove its files."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """The URL of a database on this server."""
        return f"postgresql://hub@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = f"hub_{next(self._counter)}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


class S3Server:
    """moto's S3-API server on a loopback port, with one bucket."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        """The endpoint URL clients use."""
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The AWS variables that point clients at this server."""
        return {**AWS_ENV, "AWS_ENDPOINT_URL": self.endpoint}

    def start(self) -> S3Server:
        """Start the server and create the bucket."""
        import boto3

        self._server.start()
        _wait_for_port(self.port)
        client = boto3.client("s3", endpoint_url=self.endpoint, **_credentials())
        client.create_bucket(Bucket=S3_BUCKET)
        return self

    def stop(self) -> None:
        """Stop the server."""
        self._server.stop()

    def new_prefix(self) -> str:
        """A fresh, empty object-store URL in the bucket."""
        return f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}"


def _credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS_ENV["AWS_REGION"],
    }


class Backends:
    """PostgreSQL + S3 for one test session; each hub gets a fresh database and prefix."""

    def __init__(self) -> None:
        self.postgres = PostgresServer().start()
        try:
            self.s3 = S3Server().start()
        except BaseException:
            self.postgres.stop()
            raise

    def hub_env(self) -> dict[str, str]:
        """Environment for a hub with its own fresh database and object-store prefix."""
        return {
            **self.s3.env(),
            "HUB_DATABASE_URL": self.postgres.new_database(),
            "HUB_OBJECT_STORE": self.s3.new_prefix(),
        }

    def stop(self) -> None:
        """Stop both servers."""
        self.s3.stop()
        self.postgres.stop()


class Nginx:
    """nginx as a round-robin load balancer in front of several hub replicas."""

    def __init__(self, upstreams: list[int]) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="hub-nginx-"))
        self.port = free_port()
        self.upstreams = upstreams
        self.proc: subprocess.Popen | None = None

    def _config(self) -> str:
        servers = "".join(f"        server 127.0.0.1:{port} max_fails=0;\n" for port in self.upstreams)
        user = "user root;\n" if os.geteuid() == 0 else ""
        return f"""{user}worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format combined_bytes '$request_method $uri $status $body_bytes_sent $upstream_addr';
    access_log {self.dir}/access.log combined_bytes;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    upstream hubs {{
{servers}    }}
    server {{
        listen 127.0.0.1:{self.port};
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_read_timeout 600s;
        proxy_next_upstream error timeout;
        location / {{
            proxy_pass http://hubs;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

    def start(self) -> Nginx:
        """Write the configuration and start nginx in the foreground (as a child process)."""
        conf = self.dir / "nginx.conf"
        conf.write_text(self._config())
        self.proc = subprocess.Popen([self.binary, "-p", str(self.dir), "-c", str(conf)], stderr=subprocess.PIPE)
        _wait_for_port(self.port, 30)
        return self

    @property
    def url(self) -> str:
        """The balancer's address."""
        return f"http://127.0.0.1:{self.port}"

    def access_log(self) -> list[list[str]]:
        """The access log: one ``[method, uri, status, body bytes sent, upstream]`` row per request."""
        path = self.dir / "access.log"
        return [line.split(" ") for line in path.read_text().splitlines()] if path.exists() else []

    def stop(self) -> None:
        """Stop nginx and remove its files."""
        if self.proc is not None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            if self.proc.poll() is None:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def nginx(upstreams: list[int]) -> Iterator[Nginx]:
    """nginx balancing over ``upstreams`` for the duration of the block."""
    balancer = Nginx(upstreams).start()
    try:
        yield balancer
    finally:
        balancer.stop()


def start_hub(root: Path, port: int, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``python -m hub_server serve`` in a child process; returns once it answers on ``port``."""
    import sys

    import httpx2 as httpx

    command = [sys.executable, "-m", "hub_server", "serve", "--root", str(root), "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--log-level", "warning", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/api/models", timeout=1).status_code == 200:
                return proc
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode())
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the hub did not start")
