"""The Xet protocol's storage formats, server side: hashes, xorbs, shards, reconstruction and global dedup.

A pure library (no HTTP, no storage): routes hand it request bodies and stored chunk tables, and get
back verified metadata, dedup answers and reconstruction plans. Written from the public specification
(``huggingface/xet-core``, ``spec/``) and checked against the ``hf_xet`` client.
"""

from .dedup import (
    GLOBAL_DEDUP_MODULUS,
    QUERY_PREFIXES,
    dedup_answer,
    dedup_index_chunks,
    file_start_chunks,
    flagged_chunks,
    is_dedup_eligible_hash,
    xorb_entry_from_table,
)
from .errors import XetError, XetFormatError, XetMissingDataError, XetRangeError
from .hashing import (
    ZERO_HASH,
    chunk_hash,
    file_hash,
    hash_to_hex,
    hex_to_hash,
    is_hex_hash,
    range_hash,
    sha256_hex,
    xorb_hash,
)
from .reader import XorbRangeOpener, iter_file_bytes
from .reconstruction import (
    ByteRange,
    FetchRange,
    ReconstructionPlan,
    Signer,
    parse_range_header,
    plan_reconstruction,
)
from .shard import (
    MAX_SHARD_SIZE,
    FileInfo,
    FileTerm,
    Shard,
    ShardFooter,
    XorbChunkEntry,
    XorbEntry,
    iter_shard,
    parse_shard,
    serialize_shard,
)
from .verification import referenced_xorbs, verify_file_info, verify_shard, verify_xorb_entry
from .xorb import MAX_XORB_SIZE, ChunkTable, TableSource, XorbInfo, get_table, iter_chunks, parse_xorb, write_xorb

__all__ = [
    "GLOBAL_DEDUP_MODULUS",
    "MAX_SHARD_SIZE",
    "MAX_XORB_SIZE",
    "QUERY_PREFIXES",
    "ZERO_HASH",
    "ByteRange",
    "ChunkTable",
    "FetchRange",
    "FileInfo",
    "FileTerm",
    "ReconstructionPlan",
    "Shard",
    "ShardFooter",
    "Signer",
    "TableSource",
    "XetError",
    "XetFormatError",
    "XetMissingDataError",
    "XetRangeError",
    "XorbChunkEntry",
    "XorbEntry",
    "XorbInfo",
    "XorbRangeOpener",
    "chunk_hash",
    "dedup_answer",
    "dedup_index_chunks",
    "file_hash",
    "file_start_chunks",
    "flagged_chunks",
    "get_table",
    "hash_to_hex",
    "hex_to_hash",
    "is_dedup_eligible_hash",
    "is_hex_hash",
    "iter_chunks",
    "iter_file_bytes",
    "iter_shard",
    "parse_range_header",
    "parse_shard",
    "parse_xorb",
    "plan_reconstruction",
    "range_hash",
    "referenced_xorbs",
    "serialize_shard",
    "sha256_hex",
    "verify_file_info",
    "verify_shard",
    "verify_xorb_entry",
    "write_xorb",
    "xorb_entry_from_table",
    "xorb_hash",
]
