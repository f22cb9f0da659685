"""The Xet formats of ``hub_server.xet``: hashes, xorbs, shards, reconstruction, streaming and dedup.

Format checks use seeded data; compatibility checks run the real ``hf_xet`` client against a loopback
stand-in CAS (``xet_cas_stub``) that stores, verifies and serves through the library.
"""

from __future__ import annotations

import io
import itertools
import random
import struct
import time
import tracemalloc

import pytest
from xet_cas_stub import TOKEN, running_cas

from hub_server import xet
from hub_server.xet import compression, dedup, hashing, xorb
from hub_server.xet.compression import Compression

# ---------------------------------------------------------------- helpers


def _rng(seed: int) -> random.Random:
    return random.Random(seed)


def _split(data: bytes, sizes: list[int]) -> list[bytes]:
    """Cut ``data`` into chunks of the given sizes (the last takes the rest)."""
    out, pos = [], 0
    for size in sizes:
        out.append(data[pos : pos + size])
        pos += size
    out += [data[i : i + 100_000] for i in range(pos, len(data), 100_000)]
    return [c for c in out if c]


def _xorb(chunks: list[bytes], scheme: Compression = Compression.LZ4) -> tuple[bytes, xet.XorbInfo]:
    out = io.BytesIO()
    info = xet.write_xorb(out, chunks, scheme)
    return out.getvalue(), info


def _mixed_xorb() -> tuple[bytes, list[bytes]]:
    """Three chunks stored as NONE, LZ4 and BG4-LZ4."""
    rng = _rng(1)
    raw = [rng.randbytes(5000), bytes(3000) + b"abc" * 1000, bytes(i % 7 for i in range(4099))]
    body = b""
    for data, scheme in zip(raw, (Compression.NONE, Compression.LZ4, Compression.BG4_LZ4), strict=True):
        used, packed = compression.compress_chunk(data, scheme)
        assert used == scheme
        body += xorb.chunk_header_bytes(used, len(packed), len(data)) + packed
    return body, raw


def _footer(info: xet.XorbInfo) -> bytes:
    """The optional ``XETBLOB`` v1 footer, laid out as the reference implementation writes it."""
    table, n = info.chunks, len(info.chunks)
    hashes = b"XBLBHSH\x00" + struct.pack("<I", n) + b"".join(table.hashes)
    raw_ends = list(itertools.accumulate(table.sizes))
    bounds = b"XBLBBND\x01" + struct.pack("<I", n) + struct.pack(f"<{n}I", *table.ends)
    bounds += struct.pack(f"<{n}I", *raw_ends)
    tail = 12 + 16
    body = b"XETBLOB\x01" + info.hash + hashes + bounds
    body += struct.pack("<III", n, len(hashes) + len(bounds) + tail, len(bounds) + tail) + bytes(16)
    return body + struct.pack("<I", len(body))


def _file_info(terms: list[xet.FileTerm], tables: dict, content: bytes) -> xet.FileInfo:
    """A complete file entry (verification hashes, sha256, file hash) for ``terms``."""
    pairs, checks = [], []
    for t in terms:
        hashes = tables[t.xorb_hash].hashes[t.chunk_start : t.chunk_end]
        checks.append(xet.range_hash(hashes))
        pairs += zip(hashes, tables[t.xorb_hash].sizes[t.chunk_start : t.chunk_end], strict=True)
    return xet.FileInfo(xet.file_hash(pairs), tuple(terms), tuple(checks), xet.sha256_hex(content))


def _term(info: xet.XorbInfo, start: int, end: int) -> xet.FileTerm:
    return xet.FileTerm(info.hash, start, end, info.chunks.raw_size(start, end))


@pytest.fixture(scope="module")
def corpus():
    """Three xorbs and a file of 7 terms over them (repeats, gaps, adjacency), with its bytes."""
    rng = _rng(2)
    blobs, infos, chunks = {}, {}, {}
    for n, scheme in enumerate((Compression.LZ4, Compression.NONE, Compression.BG4_LZ4)):
        data = rng.randbytes(300_000) if n != 2 else bytes(rng.randrange(4) for _ in range(250_000))
        sizes = [rng.randrange(1000, 40000) for _ in range(12)]
        parts = _split(data, sizes)
        body, info = _xorb(parts, scheme)
        blobs[info.hash], infos[n], chunks[info.hash] = body, info, parts
    x0, x1, x2 = infos[0], infos[1], infos[2]
    terms = [_term(x0, 0, 3), _term(x1, 2, 5), _term(x0, 3, 4), _term(x2, 0, 6), _term(x0, 1, 2)]
    terms += [_term(x1, 5, len(x1.chunks)), _term(x2, 6, 9)]
    content = b"".join(b"".join(chunks[t.xorb_hash][t.chunk_start : t.chunk_end]) for t in terms)
    tables = {info.hash: info.chunks for info in infos.values()}
    return {"blobs": blobs, "tables": tables, "terms": terms, "content": content, "infos": infos}


def _simulate_client(answer: dict, blobs: dict, length: int, version: str) -> bytes:
    """Rebuild the bytes of a reconstruction answer the way the download protocol says a client does."""
    fetches = {}
    for name, items in answer["fetch_info" if version == "v1" else "xorbs"].items():
        for item in items:
            descriptors = [item] if version == "v1" else item["ranges"]
            for d in descriptors:
                chunk_range, byte_range = (d["range"], d["url_range"]) if version == "v1" else (d["chunks"], d["bytes"])
                blob = blobs[xet.hex_to_hash(name)][byte_range["start"] : byte_range["end"] + 1]
                data = list(xet.iter_chunks([blob]))
                assert len(data) == chunk_range["end"] - chunk_range["start"]
                fetches.setdefault(name, []).append((chunk_range["start"], data))
    out = bytearray()
    for term in answer["terms"]:
        start, end = term["range"]["start"], term["range"]["end"]
        first, data = next((s, d) for s, d in fetches[term["hash"]] if s <= start and s + len(d) >= end)
        piece = b"".join(data[start - first : end - first])
        assert len(piece) == term["unpacked_length"]
        out += piece
    skip = answer["offset_into_first_range"]
    return bytes(out[skip : skip + length])


# ---------------------------------------------------------------- hashes


def test_hash_text_form_follows_the_spec_byte_order():
    value = bytes(range(32))
    text = "07060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918"  # the spec example lacks "10"
    assert xet.hash_to_hex(value) == text
    assert xet.hex_to_hash(text) == value
    for bad in ("", "0" * 63, "0" * 65, "G" * 64, text.upper()):
        with pytest.raises(xet.XetFormatError):
            xet.hex_to_hash(bad)
    assert xet.is_hex_hash(text) and not xet.is_hex_hash(text.upper())


def test_single_chunk_file_hash_matches_the_real_client(tmp_path, monkeypatch):
    import hf_xet

    monkeypatch.setenv("HF_XET_CACHE", str(tmp_path / "xet-cache"))

    data = _rng(3).randbytes(5000)
    path = tmp_path / "small.bin"
    path.write_bytes(data)
    [client] = hf_xet.hash_files([str(path)])
    ours = xet.file_hash([(xet.chunk_hash(data), len(data))])
    assert client.hash == xet.hash_to_hex(ours) and client.file_size == len(data)
    assert xet.xorb_hash([(xet.chunk_hash(data), len(data))]) == xet.chunk_hash(data)
    assert xet.file_hash([]) == xet.ZERO_HASH


def test_merkle_tree_groups_two_to_nine_children():
    rng = _rng(4)
    leaves = [(rng.randbytes(32), rng.randrange(1, 1000)) for _ in range(200)]
    root = xet.xorb_hash(leaves)
    assert root == xet.xorb_hash(list(leaves)) and len(root) == 32
    assert xet.xorb_hash(leaves[:2]) == hashing._merge(leaves[:2])[0]
    assert xet.xorb_hash(leaves[:-1]) != root
    assert xet.range_hash([h for h, _ in leaves[:3]]) == hashing.keyed_hash(
        b"".join(h for h, _ in leaves[:3]), hashing.VERIFICATION_KEY
    )


def test_sha256_is_stored_in_hash_byte_order():
    digest = bytes(range(32))
    stored = hashing.sha256_to_shard(digest)
    assert hashing.sha256_from_shard(stored) == digest.hex()


def test_bg4_grouping_roundtrips_every_length():
    rng = _rng(5)
    for size in list(range(10)) + [4096, 4099]:
        data = rng.randbytes(size)
        assert compression.bg4_regroup(compression.bg4_split(data)) == data
    assert compression.bg4_split(b"ABCDabcd1") == b"Aa1Bb" + b"Cc" + b"Dd"


# ---------------------------------------------------------------- xorbs


def test_xorb_roundtrip_with_every_compression_and_the_optional_footer(tmp_path):
    body, raw = _mixed_xorb()
    info = xet.parse_xorb(io.BytesIO(body))
    assert info.chunks.sizes == tuple(len(c) for c in raw) and not info.has_footer
    assert info.chunks.hashes == tuple(xet.chunk_hash(c) for c in raw)
    assert info.hash == xet.xorb_hash([(xet.chunk_hash(c), len(c)) for c in raw])
    assert list(xet.iter_chunks([body[i : i + 7] for i in range(0, len(body), 7)])) == raw
    path = tmp_path / "with-footer.xorb"
    path.write_bytes(body + _footer(info))
    footed = xet.parse_xorb(path, expected_hash=info.hash)
    assert footed.has_footer and footed.chunks == info.chunks and footed.content_size == len(body)
    assert xet.ChunkTable.from_bytes(info.chunks.to_bytes()) == info.chunks


def _lz4(data: bytes) -> bytes:
    import lz4.frame

    return lz4.frame.compress(data)


def _bad_xorbs() -> list[tuple[str, bytes, str]]:
    body, raw = _mixed_xorb()
    info = xet.parse_xorb(io.BytesIO(body))
    footer = _footer(info)
    header = xorb.chunk_header_bytes
    wrong_hash_footer = bytearray(footer)
    wrong_hash_footer[60] ^= 1
    flipped = bytearray(body)
    flipped[20] ^= 0xFF
    packed = _lz4(b"x" * 100)
    return [
        ("empty", b"", "no chunks"),
        ("truncated header", body[:5], "truncated in chunk header"),
        ("truncated body", body[:30], "truncated in chunk 0"),
        ("truncated last chunk", body[:-1], "truncated in chunk 2"),
        ("chunk byte flipped", bytes(flipped), "xorb hash mismatch"),
        ("wrong footer chunk hash", body + bytes(wrong_hash_footer), "footer does not match"),
        ("footer version 0", body + b"XETBLOB\x00" + bytes(60), "unsupported xorb footer version"),
        ("footer cut short", body + footer[:-9], "footer length"),
        ("compression type 3", header(3, 4, 4) + b"abcd", "unknown chunk compression type 3"),
        ("header version 1", b"\x01" + header(0, 4, 4)[1:] + b"abcd", "unsupported chunk header version"),
        ("raw size 0", header(0, 4, 0) + b"abcd", "uncompressed size 0"),
        ("raw size too big", header(1, 4, 131073) + b"abcd", "uncompressed size 131073"),
        ("stored size too big", header(1, 262145, 1000), "compressed size 262145"),
        ("stored size differs", header(0, 4, 5) + b"abcde", "stored and raw sizes differ"),
        ("lz4 bad magic", header(1, 20, 100) + b"z" * 20, "not a valid LZ4 frame"),
        ("lz4 magic only", header(1, 6, 100) + b"\x04\x22\x4d\x18zz", "LZ4 frame is truncated"),
        ("lz4 longer than header", header(1, len(packed), 99) + packed, "more than 99 bytes"),
        ("lz4 shorter than header", header(1, len(packed), 101) + packed, "decompresses to 100 bytes"),
        ("lz4 trailing bytes", header(1, len(packed) + 2, 100) + packed + b"zz", "trailing bytes"),
        ("lz4 cut frame", header(1, len(packed) - 4, 100) + packed[:-4], "LZ4"),
    ]


@pytest.mark.parametrize("name,body,message", _bad_xorbs(), ids=[c[0] for c in _bad_xorbs()])
def test_malformed_xorbs_are_refused(name, body, message):
    expected = xet.parse_xorb(io.BytesIO(_mixed_xorb()[0])).hash if name == "chunk byte flipped" else None
    with pytest.raises(xet.XetFormatError, match=message) as caught:
        xet.parse_xorb(io.BytesIO(body), expected_hash=expected)
    assert caught.value.status_code == 400


def test_xorb_limits_are_enforced_before_reading_on():
    one = xorb.chunk_header_bytes(0, 1, 1)
    with pytest.raises(xet.XetFormatError, match="more than 8192 chunks"):
        xet.parse_xorb(io.BytesIO((one + b"a") * 8193))
    zeros = bytes(131072)
    used, packed = compression.compress_chunk(zeros, Compression.LZ4)
    chunk = xorb.chunk_header_bytes(used, len(packed), len(zeros)) + packed
    with pytest.raises(xet.XetFormatError, match="more than 67108864 uncompressed bytes"):
        xet.parse_xorb(io.BytesIO(chunk * 513))
    body, _ = _mixed_xorb()
    with pytest.raises(xet.XetFormatError, match="larger than 100 bytes"):
        xet.parse_xorb(io.BytesIO(body), max_size=100)
    with pytest.raises(xet.XetFormatError, match="wrong length"):
        xet.ChunkTable.from_bytes(b"XCT1" + struct.pack("<I", 10**6))
    with pytest.raises(xet.XetFormatError, match="truncated"):
        list(xet.iter_chunks([body[:-3]]))


def test_xorb_hash_mismatch_names_both_hashes():
    body, _ = _mixed_xorb()
    with pytest.raises(xet.XetFormatError, match="expected 1f1f1f1f1f1f1f1f"):
        xet.parse_xorb(io.BytesIO(body), expected_hash=b"\x1f" * 32)


# ---------------------------------------------------------------- shards


def _small_shard(corpus) -> tuple[bytes, xet.FileInfo, xet.XorbEntry]:
    info = _file_info(corpus["terms"][:2], corpus["tables"], b"content")
    x0 = corpus["infos"][0]
    entry = dedup.xorb_entry_from_table(x0.hash, x0.chunks)
    return xet.serialize_shard([info], [entry], with_footer=False), info, entry


def test_shard_roundtrip_with_and_without_footer(corpus):
    body, info, entry = _small_shard(corpus)
    parsed = xet.parse_shard(body)
    assert parsed.files == (info,) and parsed.xorbs == (entry,) and parsed.footer is None
    footed = xet.serialize_shard([info], [entry], created=100, key_expiry=200)
    again = xet.parse_shard(footed)
    assert again.files == (info,) and again.footer == xet.ShardFooter(bytes(32), 100, 200)
    assert xet.parse_shard(io.BytesIO(footed)) == again
    items = list(xet.iter_shard(io.BytesIO(footed), length=len(footed)))
    assert items[0] == info and items[1] == entry and items[2] == again.footer


def _patched(body: bytes, offset: int, value: bytes) -> bytes:
    return body[:offset] + value + body[offset + len(value) :]


def test_malformed_shards_are_refused(corpus):
    body, info, _ = _small_shard(corpus)
    file_block = 48
    n_terms = len(info.terms)
    xorb_head = 48 + 48 * (1 + 2 * n_terms + 1) + 48
    cases = [
        (_patched(body, 0, b"X"), "wrong magic"),
        (_patched(body, 32, struct.pack("<Q", 3)), "header version 3"),
        (_patched(body, 40, struct.pack("<Q", 7)), "footer size 7"),
        (_patched(body, file_block + 36, struct.pack("<I", 0xFFFFFFFF)), "needs 8589934591 records"),
        (_patched(body, file_block + 48 + 40, struct.pack("<II", 5, 5)), "impossible chunk range"),
        (_patched(body, xorb_head + 36, struct.pack("<I", 0)), "lists 0 chunks"),
        (_patched(body, xorb_head + 36, struct.pack("<I", 9000)), "lists 9000 chunks"),
        (body + b"\x00" * 48, "unexpected bytes"),
        (body[:-16] + b"\x01" + bytes(15), "malformed xorb info bookend"),
    ]
    for bad, message in cases:
        with pytest.raises(xet.XetFormatError, match=message):
            xet.parse_shard(bad)
    for cut in range(0, len(body) - 1, 17):
        with pytest.raises(xet.XetFormatError):
            xet.parse_shard(body[:cut])
    footed = xet.serialize_shard([info])
    with pytest.raises(xet.XetFormatError, match="footer version"):
        xet.parse_shard(footed[:-200] + struct.pack("<Q", 9) + footed[-192:])
    with pytest.raises(xet.XetFormatError, match="larger than 10 bytes"):
        xet.parse_shard(body, max_size=10)


def test_shard_verification_refuses_what_does_not_match(corpus):
    tables = corpus["tables"]
    body, info, entry = _small_shard(corpus)
    xet.verify_shard(xet.parse_shard(body), tables)
    t0, t1 = info.terms
    bad_term = xet.FileTerm(t0.xorb_hash, t0.chunk_start, t0.chunk_end, t0.raw_size + 1)
    other_chunk = xet.XorbChunkEntry(b"\x07" * 32, 0, entry.chunks[0].raw_size)
    cases = [
        (
            xet.FileInfo(info.file_hash, (xet.FileTerm(b"\x01" * 32, 0, 1, 5), t1), info.verification, info.sha256),
            "not uploaded",
        ),
        (
            xet.FileInfo(info.file_hash, info.terms, (b"\x00" * 32, info.verification[1]), info.sha256),
            "verification hash",
        ),
        (xet.FileInfo(b"\x02" * 32, info.terms, info.verification, info.sha256), "file hash does not match"),
        (xet.FileInfo(info.file_hash, (bad_term, t1), info.verification, info.sha256), "does not match its chunks"),
        (
            xet.FileInfo(info.file_hash, (xet.FileTerm(t0.xorb_hash, 0, 99, 5), t1), info.verification, info.sha256),
            "outside",
        ),
        (xet.FileInfo(info.file_hash, info.terms, None, info.sha256), "verification entries are required"),
        (xet.FileInfo(info.file_hash, info.terms, info.verification, None), "sha256"),
    ]
    for bad, message in cases:
        with pytest.raises(xet.XetFormatError, match=message):
            xet.verify_shard(xet.Shard((bad,), ()), tables)
    wrong_listing = xet.XorbEntry(entry.hash, (other_chunk, *entry.chunks[1:]), entry.raw_size)
    with pytest.raises(xet.XetFormatError, match="chunk 0 in the shard does not match"):
        xet.verify_shard(xet.Shard((), (wrong_listing,)), tables)
    with pytest.raises(xet.XetFormatError, match="must not carry a footer"):
        xet.verify_shard(xet.parse_shard(xet.serialize_shard([info], [entry])), tables)
    assert xet.referenced_xorbs(xet.parse_shard(body)) == {t0.xorb_hash, t1.xorb_hash, entry.hash}


# ---------------------------------------------------------------- reconstruction


def test_range_header_parsing():
    parse = xet.parse_range_header
    assert parse(None, 10) is None
    assert parse("bytes=0-9", 10) == xet.ByteRange(0, 10)
    assert parse("bytes=3-", 10) == xet.ByteRange(3, 10)
    assert parse("bytes=5-1000", 10) == xet.ByteRange(5, 10)
    assert parse("bytes=-4", 10) == xet.ByteRange(6, 10)
    assert parse("bytes=-40", 10) == xet.ByteRange(0, 10)
    assert parse("bytes=0-", 0) == xet.ByteRange(0, 0)
    for value, error in [
        ("bytes=10-", xet.XetRangeError),
        ("bytes=10-20", xet.XetRangeError),
        ("bytes=-0", xet.XetRangeError),
        ("bytes=5-2", xet.XetFormatError),
        ("bytes=0-1,3-4", xet.XetFormatError),
        ("items=0-1", xet.XetFormatError),
        ("bytes=-", xet.XetFormatError),
    ]:
        with pytest.raises(error):
            parse(value, 10)
    assert parse("bytes=0-5", 0) == xet.ByteRange(0, 0)  # as the reference server: empty, not 416
    with pytest.raises(xet.XetRangeError):
        parse("bytes=1-5", 0)
    assert xet.XetRangeError("x").status_code == 416


def test_reconstruction_of_many_ranges_is_byte_exact(corpus):
    content, blobs, tables, terms = corpus["content"], corpus["blobs"], corpus["tables"], corpus["terms"]
    size = len(content)
    rng = _rng(6)
    ranges = [(0, size), (0, 1), (size - 1, size), (131071, 131073)]
    boundaries = list(itertools.accumulate(t.raw_size for t in terms))
    ranges += [(b - 1, b + 1) for b in boundaries[:-1]] + [(b, size) for b in boundaries[:-1]]
    for _ in range(120):
        start = rng.randrange(size)
        ranges.append((start, min(size, start + rng.choice([1, 7, 4096, 70_000, 400_000, size]))))

    def sign(name, start, end):
        return f"http://cas.test/fetch/{name}?start={start}&end={end}"

    for start, end in ranges:
        plan = xet.plan_reconstruction(terms, tables, xet.ByteRange(start, end))
        for version, answer in (("v1", plan.to_v1(sign)), ("v2", plan.to_v2(sign))):
            assert _simulate_client(answer, blobs, end - start, version) == content[start:end], (start, end, version)
        for fetches in plan.fetches.values():
            assert all(a.chunk_end < b.chunk_start for a, b in itertools.pairwise(fetches))

        def opener(name, a, b):
            blob = blobs[xet.hex_to_hash(name)]
            return (blob[i : min(i + 1000, b)] for i in range(a, b, 1000))

        assert b"".join(xet.iter_file_bytes(terms, tables, opener, xet.ByteRange(start, end))) == content[start:end]
    full = xet.plan_reconstruction(terms, tables)
    assert full.offset_into_first_range == 0 and full.terms == tuple(terms)
    url = full.to_v1(sign)["fetch_info"][xet.hash_to_hex(terms[0].xorb_hash)][0]
    assert url["url"].endswith(f"start={url['url_range']['start']}&end={url['url_range']['end'] + 1}")


def test_reconstruction_edges(corpus):
    tables, terms = corpus["tables"], corpus["terms"]
    size = sum(t.raw_size for t in terms)
    empty = xet.plan_reconstruction([], tables)
    assert empty.terms == () and empty.to_v2(lambda *a: "") == {"offset_into_first_range": 0, "terms": [], "xorbs": {}}
    with pytest.raises(xet.XetRangeError):
        xet.plan_reconstruction(terms, tables, xet.ByteRange(size, size + 1))
    with pytest.raises(xet.XetMissingDataError, match="no chunk table"):
        xet.plan_reconstruction(terms, {})
    broken = [xet.FileTerm(terms[0].xorb_hash, 0, 3, terms[0].raw_size + 1)]
    with pytest.raises(xet.XetMissingDataError, match="term size"):
        xet.plan_reconstruction(broken, tables)
    swapped = {k: tables[terms[1].xorb_hash] for k in tables}

    def opener(name, a, b):
        return [corpus["blobs"][terms[1].xorb_hash][a:b]]

    with pytest.raises(xet.XetError):
        list(xet.iter_file_bytes(terms, swapped, opener))


def test_streaming_reader_holds_one_piece_and_one_chunk(tmp_path):
    rng = _rng(7)
    parts = [rng.randbytes(131072) for _ in range(160)]  # 20 MiB of incompressible chunks
    path = tmp_path / "big.xorb"
    with path.open("wb") as out:
        info = xet.write_xorb(out, parts, Compression.LZ4)
    terms = [xet.FileTerm(info.hash, 0, len(parts), info.raw_size)]
    tables = {info.hash: info.chunks}

    def opener(name, start, end):
        with path.open("rb") as handle:
            handle.seek(start)
            left = end - start
            while left:
                piece = handle.read(min(65536, left))
                left -= len(piece)
                yield piece

    tracemalloc.start()
    try:
        total = 0
        for piece in xet.iter_file_bytes(terms, tables, opener, xet.ByteRange(1000, info.raw_size - 5)):
            total += len(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == info.raw_size - 1005
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes while streaming {info.raw_size}"


# ---------------------------------------------------------------- dedup


def test_dedup_eligibility_and_answer(corpus):
    eligible = bytes(24) + (1024 * 77).to_bytes(8, "little")
    assert xet.is_dedup_eligible_hash(eligible) and not xet.is_dedup_eligible_hash(
        bytes(24) + (1025).to_bytes(8, "little")
    )
    x0 = corpus["infos"][0]
    fake = xet.ChunkTable((x0.chunks.hashes[0], eligible, *x0.chunks.hashes[2:]), x0.chunks.ends, x0.chunks.sizes)
    assert xet.dedup_index_chunks(fake) == [1]
    assert xet.dedup_index_chunks(fake, file_starts=[4], flagged=[0, 99]) == [0, 1, 4]
    body, info, _ = _small_shard(corpus)
    assert xet.file_start_chunks(xet.parse_shard(body)) == {info.terms[0].xorb_hash: {info.terms[0].chunk_start}}
    key = bytes(range(32))
    answer = xet.dedup_answer([(x0.hash, x0.chunks)], hmac_key=key, now=1000, ttl_seconds=50)
    parsed = xet.parse_shard(answer)
    assert parsed.files == () and parsed.footer == xet.ShardFooter(key, 1000, 1050)
    [entry] = parsed.xorbs
    assert [c.hash for c in entry.chunks] == [hashing.keyed_hash(h, key) for h in x0.chunks.hashes]
    assert entry.serialized_size == x0.serialized_size and entry.raw_size == x0.raw_size
    footer = struct.unpack_from("<9Q", answer, len(answer) - 200)
    chunk_offset, chunk_count = footer[7], footer[8]
    keys = [struct.unpack_from("<Q", answer, chunk_offset + 16 * i)[0] for i in range(chunk_count)]
    assert chunk_count == len(x0.chunks) and keys == sorted(keys)
    with pytest.raises(xet.XetFormatError):
        xet.dedup_answer([(x0.hash, x0.chunks)], hmac_key=bytes(32))


# ---------------------------------------------------------------- the real client


def _client_files(seed: int) -> dict[str, bytes]:
    rng = _rng(seed)
    return {
        "random.bin": rng.randbytes(3_000_000),
        "zeros.bin": bytes(300_000),
        "ints.bin": b"".join(rng.randrange(-900, 900).to_bytes(4, "little", signed=True) for _ in range(200_000)),
        "small.txt": b"hello xet\n" * 12,
    }


def _upload(cas, paths: list) -> list:
    import hf_xet

    session = hf_xet.XetSession()
    expiry = int(time.time()) + 3600
    with session.new_upload_commit(endpoint=cas.base, token=TOKEN, token_expiry_unix_secs=expiry) as commit:
        handles = [commit.start_upload_file(str(p)) for p in paths]
    return [h.result() for h in handles]


@pytest.mark.parametrize("v2_shards", [True, False], ids=["v2-shards", "v1-shards"])
def test_real_client_uploads_parse_and_verify(tmp_path, monkeypatch, v2_shards):
    import hf_xet

    monkeypatch.setenv("HF_XET_CACHE", str(tmp_path / "xet-cache"))
    files = _client_files(8)
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    with running_cas() as cas:
        cas.v2_shards = v2_shards
        results = _upload(cas, paths)
        assert cas.requests("POST", "/v1/xorb-grants/default/"), "the client asks for an upload grant first"
        assert cas.requests("POST", "/v1/xorbs/default/") and len(cas.shard_bodies) == 1
        assert len(cas.requests("POST", "/v2/shards")) == 1 and len(cas.requests("POST", "/v1/shards")) == (
            not v2_shards
        )
        client_hashes = [h.hash for h in hf_xet.hash_files([str(p) for p in paths])]
        schemes = set()
        for name, body in cas.xorb_bodies.items():
            info = xet.parse_xorb(io.BytesIO(body), expected_hash=xet.hex_to_hash(name))
            schemes |= {body[info.chunks.start(i) + 4] for i in range(len(info.chunks))}
        assert schemes == {0, 1, 2}, "random, repetitive and integer data use all three compressions"
        parsed = xet.parse_shard(cas.shard_bodies[0])
        xet.verify_shard(parsed, cas.tables)
        assert xet.serialize_shard(parsed.files, parsed.xorbs, with_footer=False) == cas.shard_bodies[0]
        by_hash = {xet.hash_to_hex(f.file_hash): f for f in parsed.files}
        for result, client_hash, (name, data) in zip(results, client_hashes, files.items(), strict=True):
            assert result.xet_info.hash == client_hash, name
            assert by_hash[client_hash].size == len(data)
            assert by_hash[client_hash].sha256 == result.xet_info.sha256 == xet.sha256_hex(data)


@pytest.mark.parametrize("api", ["2", "1"], ids=["v2-reconstruction", "v1-reconstruction"])
def test_real_client_downloads_planned_reconstructions(tmp_path, monkeypatch, api):
    import hf_xet

    monkeypatch.setenv("HF_XET_CACHE", str(tmp_path / "xet-cache"))
    monkeypatch.setenv("HF_XET_CLIENT_RECONSTRUCTION_API_VERSION", api)
    rng = _rng(9)
    data = rng.randbytes(1_500_000) + bytes(400_000) + rng.randbytes(900_000)
    (tmp_path / "f.bin").write_bytes(data)
    with running_cas() as cas:
        [result] = _upload(cas, [tmp_path / "f.bin"])
        file_info = hf_xet.XetFileInfo(result.xet_info.hash, len(data))
        session = hf_xet.XetSession()
        expiry = int(time.time()) + 3600
        with session.new_file_download_group(endpoint=cas.base, token=TOKEN, token_expiry_unix_secs=expiry) as group:
            group.start_download_file(file_info, str(tmp_path / "out.bin"))
        assert (tmp_path / "out.bin").read_bytes() == data
        streams = session.new_download_stream_group(endpoint=cas.base, token=TOKEN, token_expiry_unix_secs=expiry)
        cuts = [(0, 1), (131071, 131073), (1_499_999, 1_900_001), (len(data) - 1, None), (5, None)]
        cuts += [(a, a + rng.choice([1, 1000, 200_000])) for a in sorted(rng.sample(range(len(data) - 200_000), 12))]
        for start, end in cuts:
            got = b"".join(streams.download_stream(file_info, start=start, end=end))
            assert got == data[start:end], (start, end)
        recon = cas.requests("GET", f"/v{api}/reconstructions/")
        assert recon and all(e["headers"].get("range", e["headers"].get("Range")) for e in recon)
        assert not cas.requests("GET", f"/v{3 - int(api)}/reconstructions/")
        assert cas.requests("GET", "/fetch/"), "byte ranges are fetched from the signed URLs"


def test_real_client_deduplicates_against_a_dedup_answer(tmp_path, monkeypatch):
    import hf_xet

    rng = _rng(10)
    first = rng.randbytes(5_000_000)
    second = first[:4_000_000] + rng.randbytes(1_000_000)
    (tmp_path / "a.bin").write_bytes(first)
    (tmp_path / "b.bin").write_bytes(second)
    with running_cas() as cas:
        monkeypatch.setenv("HF_XET_CACHE", str(tmp_path / "cache-1"))
        _upload(cas, [tmp_path / "a.bin"])
        cas.answer_dedup = True
        before = sum(e["size"] for e in cas.requests("POST", "/v1/xorbs/"))
        monkeypatch.setenv("HF_XET_CACHE", str(tmp_path / "cache-2"))  # no local shard cache: only the server can help
        [result] = _upload(cas, [tmp_path / "b.bin"])
        sent = sum(e["size"] for e in cas.requests("POST", "/v1/xorbs/")) - before
        assert cas.requests("GET", "/v1/chunks/default/")
        assert result.dedup_metrics.deduped_bytes_by_global_dedup >= 3_500_000
        assert sent < 1_300_000, f"{sent} bytes of xorbs sent for 1 MB of new data"
        expiry = int(time.time()) + 3600
        group = hf_xet.XetSession().new_download_stream_group(
            endpoint=cas.base, token=TOKEN, token_expiry_unix_secs=expiry
        )
        info = hf_xet.XetFileInfo(result.xet_info.hash, len(second))
        assert b"".join(group.download_stream(info)) == second


# ---------------------------------------------------------------- throughput


@pytest.mark.slow
def test_parse_and_verify_throughput_of_a_64_mib_xorb(tmp_path, record_property):
    rng = _rng(11)
    raw_chunk = [rng.randbytes(65536) for _ in range(4)] + [bytes(i % 251 for i in range(65536))]
    parts = [raw_chunk[i % 5] + i.to_bytes(4, "little") for i in range(1023)]
    path = tmp_path / "big.xorb"
    with path.open("wb") as out:
        written = xet.write_xorb(out, parts, Compression.LZ4)
    assert written.raw_size <= 64 * 1024 * 1024
    tracemalloc.start()
    started = time.perf_counter()
    try:
        info = xet.parse_xorb(path, expected_hash=written.hash)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.chunks == written.chunks
    rate = info.raw_size / elapsed / 1e6
    record_property("xorb_parse_verify_mb_per_s", round(rate, 1))
    print(f"parse+verify: {info.raw_size / 2**20:.1f} MiB raw in {elapsed:.3f} s = {rate:.0f} MB/s, peak {peak} B")
    assert peak < 4 * 1024 * 1024
