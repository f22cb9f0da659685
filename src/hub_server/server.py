"""Running the hub: a uvicorn server in a background thread, or in the foreground."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from .app import create_app
from .protocol import with_header_timeout
from .settings import HubSettings
from .storage import HubStorage


@dataclasses.dataclass
class RunningHub:
    """A hub served on a loopback port: its URL, storage and helpers for tests and demos."""

    url: str
    storage: HubStorage
    server: uvicorn.Server

    @property
    def endpoint(self) -> str:
        """The value to put in ``HF_ENDPOINT``."""
        return self.url

    def add_user(self, name: str, *, role: str = "write") -> str:
        """Create a user (if missing) and return a new token for it."""
        self.storage.add_user(name, exist_ok=True)
        return self.storage.create_token(name, role=role)

    def add_org(self, name: str, members: dict[str, str], *, fullname: str | None = None) -> None:
        """Create an organisation (if missing) with ``members`` (user -> role: read, write or admin)."""
        self.storage.orgs.add_org(name, fullname=fullname, exist_ok=True)
        for user, role in members.items():
            self.storage.orgs.set_member(name, user, role)


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _config(app, host: str, port: int, log_level: str, header_timeout: float = 20.0) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # the hub's own access log (accesslog.py) redacts tickets and signatures
        http=with_header_timeout(header_timeout),
        timeout_keep_alive=30,
        h11_max_incomplete_event_size=1 << 20,
        lifespan="off",
    )


def configure_logging(level: str) -> None:
    """Send the hub's log (access log included) to stderr at ``level``, as uvicorn does with its own."""
    logger = logging.getLogger("hub_server")
    if not any(getattr(h, "_hub", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._hub = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level.upper())


@contextlib.contextmanager
def running_hub(
    root: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    scan_uploads: bool = True,
    settings: HubSettings | None = None,
    log_level: str = "warning",
) -> Iterator[RunningHub]:
    """Serve a hub rooted at ``root`` in a background thread (port 0 picks a free one); stop on exit."""
    storage = HubStorage(Path(root), settings=settings, scan_uploads=scan_uploads)
    app = create_app(storage)
    sock = _bind(host, port)
    actual_port = sock.getsockname()[1]
    server = uvicorn.Server(_config(app, host, actual_port, log_level, storage.settings.header_timeout))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="hub-server")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("The hub server failed to start")
        time.sleep(0.01)
    url_host = f"[{host}]" if ":" in host else host
    try:
        yield RunningHub(url=f"http://{url_host}:{actual_port}", storage=storage, server=server)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        storage.close()


def serve(
    settings: HubSettings,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    log_level: str = "info",
) -> None:
    """Serve a hub in the foreground until interrupted."""
    storage = HubStorage(settings=settings)
    app = create_app(storage)
    config = _config(app, host, port, log_level, settings.header_timeout)
    configure_logging(log_level)
    uvicorn.Server(config).run()
