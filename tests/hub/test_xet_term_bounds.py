"""What a shard may ask of the hub (hardening round 2): terms must average a chunk's size, and adjacent terms of
one xorb are stored as one, so a file's reconstruction stays as small as its content allows."""

from __future__ import annotations

import io

from hubtools import seeded_bytes
from xettools import Cas, XetFile, pack, upload

from hub_server import RepoRef, xet
from hub_server.storage.xet_store import MIN_AVERAGE_TERM_BYTES
from hub_server.xet.compression import Compression


def _sliced(data: bytes, chunk_size: int, per_term: int) -> XetFile:
    """``data`` as one xorb of ``chunk_size`` chunks, described by terms of ``per_term`` chunks each."""
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    out = io.BytesIO()
    info = xet.write_xorb(out, chunks, Compression.NONE)
    table = info.chunks
    spans = [(i, min(i + per_term, len(chunks))) for i in range(0, len(chunks), per_term)]
    terms = tuple(xet.FileTerm(info.hash, a, b, sum(table.sizes[a:b])) for a, b in spans)
    verification = tuple(xet.range_hash(table.hashes[a:b]) for a, b in spans)
    file = xet.FileInfo(xet.file_hash(table.hash_pairs()), terms, verification, xet.sha256_hex(data))
    return XetFile(data, out.getvalue(), info, file)


def test_a_file_of_tiny_terms_is_refused_before_it_costs_anything(hub, alice, repo):
    _, repo_id = repo
    cas = Cas.of(hub, alice, repo_id)
    item = _sliced(seeded_bytes(8_000, seed=21), chunk_size=1, per_term=1)  # 8,000 one-byte terms
    assert cas.post_xorb(item.xorb, item.xorb_name).status_code == 200
    hashed = hub.storage.xet.stats["sha256_bytes_hashed"]
    response = cas.post_shard(item.shard())
    assert response.status_code == 400
    assert "8000 terms for 8000 bytes" in response.text and str(MIN_AVERAGE_TERM_BYTES) in response.text
    assert cas.reconstruction(item.file_hash).status_code == 404
    assert hub.storage.xet.stats["sha256_bytes_hashed"] == hashed, "refused before its content was hashed"


def test_adjacent_terms_are_stored_as_one(hub, alice, repo):
    _, repo_id = repo
    cas = Cas.of(hub, alice, repo_id)
    item = _sliced(seeded_bytes(200_000, seed=22), chunk_size=10_000, per_term=2)  # 10 terms of 20 KB
    assert len(item.file.terms) == 10
    assert cas.post_xorb(item.xorb, item.xorb_name).status_code == 200
    assert cas.post_shard(item.shard()).status_code == 200
    plan = cas.reconstruction(item.file_hash).json()
    assert len(plan["terms"]) == 1 and plan["terms"][0]["range"] == {"start": 0, "end": 20}
    assert plan["terms"][0]["unpacked_length"] == len(item.data)


def test_a_member_who_left_the_org_loses_dedup_reach_to_its_private_xorbs(hub, make_api, repo_name):
    """Dedup reach follows today's membership, not who created the repo (no confirm-this-file oracle)."""
    carol = hub.add_user("carol")
    hub.add_org("acme-dedup", {"carol": "write"})
    private, own = f"acme-dedup/{repo_name}", f"carol/{repo_name}"
    make_api(carol).create_repo(private, private=True)
    make_api(carol).create_repo(own)
    item = pack(seeded_bytes(80_000, seed=23))
    upload(Cas.of(hub, carol, private), item)
    chunk = xet.hash_to_hex(item.info.chunks.hashes[0])
    usable = hub.storage.xet.index.usable_xorb
    assert usable(RepoRef("model", "carol", repo_name), "carol", item.xorb_name) == "grant", (
        "a member may dedup against them"
    )
    hub.storage.orgs.remove_member("acme-dedup", "carol")
    assert usable(RepoRef("model", "carol", repo_name), "carol", item.xorb_name) is None
    cas = Cas.of(hub, carol, own)
    assert cas.dedup(chunk).status_code == 404
    assert cas.post_shard(item.shard()).status_code == 400, "nor reference them"


def test_a_refused_sha256_claim_is_not_hashed_again(hub, alice, repo):
    """A shard refused for its sha256 claim, sent again (with the same or another wrong claim), costs no hashing."""
    _, repo_id = repo
    cas = Cas.of(hub, alice, repo_id)
    item = pack(seeded_bytes(300_000, seed=24))
    assert cas.post_xorb(item.xorb, item.xorb_name).status_code == 200
    assert cas.post_shard(item.shard(sha256="0" * 64)).status_code == 400
    hashed = hub.storage.xet.stats["sha256_bytes_hashed"]
    for claim in ("0" * 64, "1" * 64, "0" * 64):
        response = cas.post_shard(item.shard(sha256=claim))
        assert response.status_code == 400 and "does not match its content" in response.text
    assert hub.storage.xet.stats["sha256_bytes_hashed"] == hashed
    assert cas.post_shard(item.shard()).status_code == 200  # the true claim is accepted without hashing either
    assert hub.storage.xet.stats["sha256_bytes_hashed"] == hashed
