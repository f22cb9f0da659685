"""A minimal in-memory CAS built on ``hub_server.xet``, served over loopback for the real ``hf_xet`` client.

It records every request, keeps what the client uploads, verifies it with the library and answers
reconstructions, xorb range reads and dedup queries from it. It is a test double for the format code,
not the Hub's CAS: no auth beyond a fixed token, no persistence.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from hub_server import xet
from hub_server.xet import dedup

TOKEN = "xet-test-token"
_XORB = re.compile(r"/v1/xorbs/([a-z-]+)/([0-9a-f]{64})")
_CHUNK = re.compile(r"/v1/chunks/([a-z-]+)/([0-9a-f]{64})")
_RECON = re.compile(r"/(v1|v2)/reconstructions/([0-9a-f]{64})")
_FETCH = re.compile(r"/fetch/([0-9a-f]{64})")


class CasState:
    """What the stub holds and how it answers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[dict] = []
        self.xorb_bodies: dict[str, bytes] = {}
        self.tables: dict[bytes, xet.ChunkTable] = {}
        self.files: dict[bytes, xet.FileInfo] = {}
        self.shard_bodies: list[bytes] = []
        self.dedup_index: dict[bytes, bytes] = {}
        self.hmac_key = bytes(range(1, 33))
        self.v2_shards = True
        self.v2_reconstruction = True
        self.answer_dedup = False
        self.base = ""

    def requests(self, method: str, prefix: str) -> list[dict]:
        """Logged requests whose method and path prefix match."""
        return [e for e in self.log if e["method"] == method and e["path"].startswith(prefix)]

    def sign(self, xorb_hex: str, start: int, end: int) -> str:
        """A fetch URL bound to one xorb byte range (unsigned: the stub trusts loopback)."""
        return f"{self.base}/fetch/{xorb_hex}?start={start}&end={end}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: CasState

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes = b"", ctype: str = "application/json", headers=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value) -> None:
        self._reply(status, json.dumps(value).encode())

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        entry = {"method": self.command, "path": path, "headers": dict(self.headers), "size": len(body)}
        with self.state.lock:
            self.state.log.append(entry)
        if self.command == "POST" and path == "/v1/telemetry":
            return self._json(200, {})
        if "/xet-read-token/" in path or "/xet-write-token/" in path:
            return self._token()
        if path.startswith("/fetch/"):
            return self._fetch()
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._json(401, {"error": "bad token"})
        try:
            self._dispatch(path, body)
        except xet.XetError as exc:
            self._json(exc.status_code, {"error": exc.message})

    def _dispatch(self, path: str, body: bytes) -> None:
        if self.command == "POST" and (m := _XORB.fullmatch(path)):
            return self._xorb(m.group(2), body)
        if self.command == "POST" and path in ("/v1/shards", "/v2/shards"):
            return self._shard(path, body)
        if self.command == "GET" and (m := _CHUNK.fullmatch(path)):
            return self._dedup(xet.hex_to_hash(m.group(2)))
        if self.command == "GET" and (m := _RECON.fullmatch(path)):
            return self._reconstruction(m.group(1), xet.hex_to_hash(m.group(2)))
        self._json(404, {"error": "not found"})

    def _token(self) -> None:
        exp = int(time.time()) + 3600
        headers = {"X-Xet-Cas-Url": self.state.base, "X-Xet-Access-Token": TOKEN, "X-Xet-Token-Expiration": str(exp)}
        body = json.dumps({"accessToken": TOKEN, "exp": exp, "casUrl": self.state.base}).encode()
        self._reply(200, body, headers=headers)

    def _xorb(self, name: str, body: bytes) -> None:
        info = xet.parse_xorb(io.BytesIO(body), expected_hash=xet.hex_to_hash(name))
        with self.state.lock:
            inserted = name not in self.state.xorb_bodies
            self.state.xorb_bodies[name] = body
            self.state.tables[info.hash] = info.chunks
        self._json(200, {"was_inserted": inserted})

    def _shard(self, path: str, body: bytes) -> None:
        if path == "/v2/shards" and not self.state.v2_shards:
            return self._json(404, {"error": "not found"})
        shard = xet.parse_shard(body)
        with self.state.lock:
            xet.verify_shard(shard, self.state.tables)
            self.state.shard_bodies.append(body)
            starts = dedup.file_start_chunks(shard)
            for info in shard.files:
                self.state.files[info.file_hash] = info
            for xorb_hash in xet.referenced_xorbs(shard):
                table = self.state.tables[xorb_hash]
                for i in xet.dedup_index_chunks(table, starts.get(xorb_hash, ())):
                    self.state.dedup_index[table.hashes[i]] = xorb_hash
        if path == "/v2/shards":
            frames = [{"type": "validating", "verified": 1, "total": 1}, {"type": "result"}]
            return self._reply(200, "".join(json.dumps(f) + "\n" for f in frames).encode(), "application/x-ndjson")
        self._json(200, {"result": 1})

    def _dedup(self, chunk: bytes) -> None:
        xorb_hash = self.state.dedup_index.get(chunk) if self.state.answer_dedup else None
        if xorb_hash is None:
            return self._json(404, {"error": "not found"})
        answer = xet.dedup_answer([(xorb_hash, self.state.tables[xorb_hash])], hmac_key=self.state.hmac_key)
        self._reply(200, answer, "application/octet-stream")

    def _reconstruction(self, version: str, file_hash: bytes) -> None:
        if version == "v2" and not self.state.v2_reconstruction:
            return self._json(404, {"error": "not found"})
        info = self.state.files.get(file_hash)
        if info is None:
            return self._json(404, {"error": "file not found"})
        wanted = xet.parse_range_header(self.headers.get("Range"), info.size)
        plan = xet.plan_reconstruction(info.terms, self.state.tables, wanted)
        self._json(200, plan.to_v2(self.state.sign) if version == "v2" else plan.to_v1(self.state.sign))

    def _fetch(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        name = urlsplit(self.path).path.rsplit("/", 1)[1]
        start, end = int(query["start"][0]), int(query["end"][0])
        if self.headers.get("Range") != f"bytes={start}-{end - 1}" or "Authorization" in self.headers:
            return self._json(403, {"error": "range or credentials not allowed by this URL"})
        data = self.state.xorb_bodies[name][start:end]
        total = len(self.state.xorb_bodies[name])
        self._reply(206, data, "application/octet-stream", {"Content-Range": f"bytes {start}-{end - 1}/{total}"})

    do_GET = do_POST = do_PUT = _route


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """Stay quiet when the client drops a kept-alive connection (it does so at session end)."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def running_cas() -> Iterator[CasState]:
    """Serve a fresh :class:`CasState` on a free loopback port for the duration of the block."""
    state = CasState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = _Server(("127.0.0.1", 0), handler)
    state.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
