"""Helpers for the Xet tests: tokens from the hub, a raw CAS client, and xorbs and shards built with the library."""

from __future__ import annotations

import dataclasses
import io

import httpx2 as httpx

from hub_server import xet
from hub_server.xet import dedup
from hub_server.xet.compression import Compression


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def token_response(hub, hub_token: str | None, repo_id: str, kind: str = "write", revision: str = "main",
                   repo_type: str = "models", query: str = "") -> httpx.Response:  # fmt: skip
    headers = auth(hub_token) if hub_token else {}
    return httpx.get(f"{hub.url}/api/{repo_type}/{repo_id}/xet-{kind}-token/{revision}{query}", headers=headers)


@dataclasses.dataclass
class Cas:
    """A raw client of one repo's CAS, with one Xet token."""

    url: str
    token: str

    @classmethod
    def of(cls, hub, hub_token: str, repo_id: str, kind: str = "write") -> Cas:
        response = token_response(hub, hub_token, repo_id, kind)
        assert response.status_code == 200, response.text
        return cls(response.json()["casUrl"], response.json()["accessToken"])

    def post_xorb(self, body: bytes, name: str, prefix: str = "default") -> httpx.Response:
        return httpx.post(f"{self.url}/v1/xorbs/{prefix}/{name}", content=body, headers=auth(self.token), timeout=60)

    def post_shard(self, body: bytes, version: str = "v1") -> httpx.Response:
        return httpx.post(f"{self.url}/{version}/shards", content=body, headers=auth(self.token), timeout=60)

    def reconstruction(self, file_hash: str, byte_range: str | None = None, version: str = "v1") -> httpx.Response:
        headers = auth(self.token) | ({"range": byte_range} if byte_range else {})
        return httpx.get(f"{self.url}/{version}/reconstructions/{file_hash}", headers=headers)

    def dedup(self, chunk: str) -> httpx.Response:
        return httpx.get(f"{self.url}/v1/chunks/default/{chunk}", headers=auth(self.token))


@dataclasses.dataclass
class XetFile:
    """One file packed into one xorb, with everything a shard says about it."""

    data: bytes
    xorb: bytes
    info: xet.XorbInfo
    file: xet.FileInfo

    @property
    def xorb_name(self) -> str:
        return xet.hash_to_hex(self.info.hash)

    @property
    def file_hash(self) -> str:
        return xet.hash_to_hex(self.file.file_hash)

    @property
    def sha256(self) -> str:
        return xet.sha256_hex(self.data)

    def shard(self, **changes) -> bytes:
        """A footerless shard (as uploaded) registering the file and listing its xorb; ``changes`` alter the file."""
        info = dataclasses.replace(self.file, **changes)
        entry = dedup.xorb_entry_from_table(self.info.hash, self.info.chunks)
        return xet.serialize_shard([info], [entry], with_footer=False)


def pack(data: bytes, chunk_size: int = 16 * 1024, scheme: Compression = Compression.LZ4) -> XetFile:
    """Cut ``data`` into fixed-size chunks, write them as one xorb and describe the file."""
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    out = io.BytesIO()
    info = xet.write_xorb(out, chunks, scheme)
    table = info.chunks
    term = xet.FileTerm(info.hash, 0, len(chunks), len(data))
    file = xet.FileInfo(
        xet.file_hash(table.hash_pairs()), (term,), (xet.range_hash(table.hashes),), xet.sha256_hex(data)
    )
    return XetFile(data, out.getvalue(), info, file)


def upload(cas: Cas, item: XetFile) -> None:
    """Upload a packed file's xorb and shard; both must be accepted."""
    response = cas.post_xorb(item.xorb, item.xorb_name)
    assert response.status_code == 200, response.text
    response = cas.post_shard(item.shard())
    assert response.status_code == 200, response.text


def lfs_line(path: str, oid: str, size: int) -> dict:
    return {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": size}}


def commit(hub, token: str, repo_id: str, *lines: dict) -> httpx.Response:
    import json

    header = {"key": "header", "value": {"summary": "xet test", "description": ""}}
    body = b"\n".join(json.dumps(line).encode() for line in (header, *lines))
    headers = auth(token) | {"content-type": "application/x-ndjson"}
    return httpx.post(f"{hub.url}/api/models/{repo_id}/commit/main", content=body, headers=headers, timeout=60)
