"""What a file is, by its content: a pickle, a container a loader would open, or neither.

Names are chosen by the uploader, so they decide nothing. ``sniff`` looks at the first bytes (and, for zip
files, which ``zipfile`` finds from their end, at the last ones) the way the loaders do: ``torch.load`` (zip,
or pickles in its legacy format), ``joblib.load`` (zlib, gzip, bz2, xz, lzma or lz4 data holding a pickle,
whatever the name), ``numpy.load`` (``.npy`` with object arrays, ``.npz`` zips), ``pandas.read_pickle``
(gzip, bz2, xz, zip, tar, zstd) and ``pickle.load`` (a pickle of any protocol, with or without its header).

Standard library only: the scanning subprocess imports it too.
"""

from __future__ import annotations

import io
import pickletools
import re

HEAD = 64 * 1024
TAIL = 66 * 1024  # a zip's end-of-central-directory record lies within its last 64 KiB + 22 bytes

# Containers a loader opens by itself, and their magic bytes.
MAGIC = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x5d\x00", "lzma"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x93NUMPY", "npy"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"ZF", "joblib-zfile"),
)
CONTAINERS = frozenset(name for _, name in MAGIC) | {"tar"}
NOT_INSPECTED = frozenset({"7z", "rar"})  # no loader unpickles these by itself; reported as unscanned
_OPCODES = frozenset(op.code.encode("latin-1") for op in pickletools.opcodes)
_GLOBAL_OPS = frozenset({"GLOBAL", "INST", "STACK_GLOBAL"})  # EXT1/2/4: no codes are registered
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _is_zlib(head: bytes) -> bool:
    """joblib takes any file starting with 0x78 for zlib; only a valid zlib header can decompress."""
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0


def _zip_at_end(tail: bytes | None) -> bool:
    return tail is not None and b"PK\x05\x06" in tail


# What the argument line of a protocol-0 opcode may hold, for the opcodes that text commonly starts with: a line
# that cannot be one (the head ends before its newline) makes the stream text, not a pickle a loader would read.
_MODULE_PATH = re.compile(rb"[A-Za-z_][A-Za-z0-9_.]{0,1023}")  # no importable module path is longer
_LINE_ARGUMENT = {
    b"c": _MODULE_PATH,  # GLOBAL
    b"i": _MODULE_PATH,  # INST
    b"S": re.compile(rb"['\"].*", re.S),  # STRING: a quoted repr
    b"I": re.compile(rb"[-+]?[0-9]*"),  # INT
    b"L": re.compile(rb"[-+]?[0-9]*L?"),  # LONG
    b"F": re.compile(rb"[-+0-9.eEinfatyINFATY]*"),  # FLOAT
    b"g": re.compile(rb"[0-9]*"),  # GET
    b"p": re.compile(rb"[0-9]*"),  # PUT
}


def _cannot_be_argument(head: bytes, start: int) -> bool:
    """Whether the opcode at ``start`` takes a text line that the head ends inside and that it could not be."""
    syntax = _LINE_ARGUMENT.get(head[start : start + 1])
    rest = head[start + 1 :]
    return syntax is not None and b"\n" not in rest and syntax.fullmatch(rest) is None


def _pickle_like(head: bytes, truncated: bool) -> bool:
    """Whether a header-less (protocol 0/1) stream is a pickle a loader would read.

    Parses, never guesses: a stream that parses as a complete pickle is one, whatever it names (torch's legacy
    format is several pickles in a row, and the first may name nothing); one that names an importable global
    is one; an invalid opcode or argument (text, random data) means no; running out of sniffed bytes inside a
    well-formed stream means "look closer" (the sandbox reads every pickle in the file).
    """
    if head[:1] not in _OPCODES:
        return False
    stream = io.BytesIO(head)
    next_op = 0
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            if opcode.name in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                if not (_IDENT.fullmatch(module) and _IDENT.fullmatch(name)):
                    return False  # a loader's import of it fails before anything runs
                return True
            if opcode.name in _GLOBAL_OPS:
                return True
            next_op = stream.tell()
    except Exception:  # noqa: BLE001 - pickletools raises several types on data that is not a pickle
        if _cannot_be_argument(head, next_op):
            return False
        return truncated and stream.tell() >= len(head) - 16
    return True  # parsed to STOP: a complete pickle


def sniff(head: bytes, tail: bytes | None = None, size: int | None = None) -> str | None:
    """The format of content starting with ``head`` (ending with ``tail``); None when it holds no pickle.

    Formats: "pickle", a container name from ``MAGIC`` ("zip", "gzip", …), "zlib", "tar".
    """
    for magic, name in MAGIC:
        if head.startswith(magic):
            if name == "joblib-zfile" and not _is_zlib(head[21:23]):
                continue  # joblib's pre-0.9 format: "ZF", a 19-byte length, then zlib data
            return name
    if _is_zlib(head):
        return "zlib"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if _zip_at_end(tail):
        return "zip"
    if len(head) >= 2 and head[0] == 0x80 and head[1] <= 5:
        return "pickle"
    truncated = size is None or size > len(head)
    if _pickle_like(head, truncated):
        return "pickle"
    return None


def sniff_file(path) -> str | None:
    """``sniff`` of a file on disk."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD)
        fh.seek(0, io.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - TAIL))
        tail = fh.read(TAIL)
    return sniff(head, tail, size)
