"""The object store contract, run against every implementation: what the hub relies on from a backend."""

from __future__ import annotations

import hashlib
import threading

import pytest
from hubtools import seeded_bytes

from hub_server import errors
from hub_server.storage import LocalObjectStore, MemoryObjectStore, ObjectStore


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path) -> ObjectStore:
    """Each implementation in turn."""
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    return MemoryObjectStore()


def _key(data: bytes) -> str:
    return f"lfs/{hashlib.sha256(data).hexdigest()}"


def test_implements_the_protocol(store):
    assert isinstance(store, ObjectStore)


def test_put_file_then_read_back_whole_and_in_ranges(store, tmp_path):
    data = seeded_bytes(9 * 1024 * 1024 + 17, seed=1)  # more than two read chunks
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    key = _key(data)
    assert not store.exists(key) and store.size(key) is None
    store.put_file(key, source)
    assert store.exists(key) and store.size(key) == len(data)
    assert b"".join(store.iter_range(key)) == data
    for start, stop in [(0, 1), (5, 4 * 1024 * 1024 + 3), (len(data) - 10, len(data)), (100, None), (7, 7)]:
        assert b"".join(store.iter_range(key, start, stop)) == data[start:stop]
        assert store.read(key, start, stop) == data[start:stop]
    assert all(len(chunk) <= 4 * 1024 * 1024 for chunk in store.iter_range(key))


def test_put_is_idempotent_and_keeps_the_first_bytes(store, tmp_path):
    data = b"first"
    store.put_bytes("lfs/0000aaaa", data)
    store.put_bytes("lfs/0000aaaa", b"second")  # content-addressed keys never change content
    other = tmp_path / "again"
    other.write_bytes(b"third")
    store.put_file("lfs/0000aaaa", other)
    assert store.read("lfs/0000aaaa") == data


def test_delete_and_missing_objects(store):
    store.put_bytes("xorbs/abcdef01", b"x")
    store.delete("xorbs/abcdef01")
    store.delete("xorbs/abcdef01")  # deleting twice is fine
    assert not store.exists("xorbs/abcdef01")
    with pytest.raises(errors.NotFound):
        b"".join(store.iter_range("xorbs/abcdef01"))


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "lfs/../../x", "lfs", "/lfs/abcd", "lfs/a/b", "LFS/abcd", "lfs/.hidden"]
)
def test_keys_cannot_escape(store, key):
    with pytest.raises(errors.BadRequest):
        store.exists(key)


def test_concurrent_puts_of_one_key_store_it_once(store, tmp_path):
    data = seeded_bytes(1024 * 1024, seed=2)
    key = _key(data)
    sources = []
    for i in range(8):
        path = tmp_path / f"src{i}"
        path.write_bytes(data)
        sources.append(path)
    threads = [threading.Thread(target=store.put_file, args=(key, p)) for p in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.read(key) == data


def test_url_hook_and_local_path(store, tmp_path):
    store.put_bytes("lfs/00aa11bb", b"abc")
    assert store.url_for("lfs/00aa11bb", expires_in=60) is None  # served by the hub itself
    local = store.local_path("lfs/00aa11bb")
    assert local is None or local.read_bytes() == b"abc"


def test_local_store_leaves_no_partial_files(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    store.put_bytes("lfs/00aa11bb", b"abc")
    names = [p.name for p in (tmp_path / "objects").rglob("*") if p.is_file()]
    assert names == ["00aa11bb"]
