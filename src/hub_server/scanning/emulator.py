"""Unpickling without running anything: every global becomes a stand-in class, and the globals are recorded.

The stream is read by CPython's own pure-Python unpickler (the one joblib uses, opcode for opcode the same as
the C one), so the scanner sees exactly the opcodes a loader would execute, in the same order, and stops where
a loader would stop. What it never does is import or call: ``find_class`` returns a stand-in, persistent ids
(torch's storages) become stand-ins, and calling a stand-in makes another one. Large byte and string arguments
are skipped rather than held in memory. joblib's numpy arrays, written raw into the stream after the wrapper
object, are skipped the way ``joblib.load`` reads them; the stream is also read the way plain ``pickle.load``
would read it, without that skipping, and the globals of both readings count.

This module only uses the standard library: it runs inside the scanning subprocess.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import re
import struct

MAX_LINE = 1 << 20  # a text opcode argument longer than this is refused (a loader would read it whole)
BIG_ARG = 1 << 16  # byte/string arguments larger than this are skipped, not kept
CHUNK = 1 << 20
MAX_GLOBALS = 5000
MAX_FRAME = 1 << 20
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")


class ScanLimit(Exception):
    """The content needs more than the scanner allows (time, memory, size, nesting)."""


class _Stub:
    """An instance made by calling a stand-in: accepts anything a loader could do to it."""

    _global: tuple[str, str] | None = None

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls if isinstance(cls, type) and issubclass(cls, _Stub) else _Stub)

    def __init__(self, *args, **kwargs) -> None:
        self.args = args[:8]
        self.state = None

    def __call__(self, *args, **kwargs) -> _Stub:
        return _Stub(*args)

    def __setstate__(self, state) -> None:
        self.state = state

    def __setitem__(self, key, value) -> None:
        pass

    def append(self, value) -> None:
        pass

    def extend(self, values) -> None:
        pass

    def add(self, value) -> None:
        pass


def _stand_in(module: str, name: str) -> type:
    """A class standing for the global ``module.name`` (a class, so NEWOBJ accepts it)."""
    return type("StandIn", (_Stub,), {"_global": (module, name)})


class Budget:
    """Bytes read out of decompressors and containers, shared by a whole scan."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise ScanLimit(f"more than {self.limit} bytes once decompressed")


class Reader:
    """A forward-only reader over a stream, with an optional prefix already read and a byte budget."""

    def __init__(self, stream, prefix: bytes = b"", budget: Budget | None = None) -> None:
        self._stream = stream
        self._buf = bytearray(prefix)
        self._budget = budget
        self._eof = False

    def _fill(self, n: int) -> None:
        while len(self._buf) < n and not self._eof:
            chunk = self._stream.read(max(n - len(self._buf), 65536))
            if not chunk:
                self._eof = True
                break
            if self._budget is not None:
                self._budget.take(len(chunk))
            self._buf += chunk

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while True:
                part = self.read(CHUNK)
                if not part:
                    return b"".join(parts)
                parts.append(part)
        self._fill(n)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def skip(self, n: int) -> int:
        """Discard ``n`` bytes; returns how many were there."""
        done = 0
        while done < n:
            part = self.read(min(CHUNK, n - done))
            if not part:
                break
            done += len(part)
        return done

    def readline(self, limit: int = -1) -> bytes:
        start = 0
        while True:
            pos = self._buf.find(b"\n", start)
            if pos >= 0:
                return self.read(pos + 1)
            if len(self._buf) > MAX_LINE:
                self._skip_unterminated_line()
            start = len(self._buf)
            before = len(self._buf)
            self._fill(before + 65536)
            if len(self._buf) == before:
                return self.read(len(self._buf))

    def _skip_unterminated_line(self) -> None:
        """A text argument past MAX_LINE: refused if it ends, truncated data (as a loader sees it) if it never does.

        A loader reading a line that runs to the end of the data fails before doing anything more, so a long text
        file that merely starts like a pickle is not one; a line that does end past the limit is refused.
        """
        while b"\n" not in self._buf:
            self._buf.clear()  # read bytes are counted against the budget as they arrive
            self._fill(65536)
            if not self._buf:
                raise EOFError("a text argument runs to the end of the data (pickle data was truncated)")
        raise ScanLimit(f"a text argument longer than {MAX_LINE} bytes")

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def at_eof(self) -> bool:
        self._fill(1)
        return not self._buf

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return bytes(self._buf[:n])


class _Skipped(bytes):
    """Placeholder for a large bytes argument that was skipped."""


def _in_frame(unpickler: Recorder) -> bool:
    frame = unpickler._unframer.current_frame
    if frame is None:
        return False
    pos = frame.tell()
    end = frame.seek(0, io.SEEK_END)
    frame.seek(pos)
    return pos < end


def _skip_bytes(unpickler: Recorder, size: int, kind: type = bytes):
    if size > BIG_ARG and not _in_frame(unpickler):
        if unpickler.reader.skip(size) < size:
            raise pickle.UnpicklingError("truncated data")
        return "\0<large string>" if kind is str else _Skipped(b"")
    data = unpickler.read(size)
    if len(data) < size:
        raise pickle.UnpicklingError("truncated data")
    return data.decode("utf-8", "surrogatepass") if kind is str else data


class Recorder(pickle._Unpickler):  # the pure-Python unpickler joblib itself uses
    """Reads one pickle from ``reader``, recording globals instead of importing them."""

    dispatch = pickle._Unpickler.dispatch.copy()

    def __init__(self, reader: Reader, found: dict, *, joblib: bool) -> None:
        super().__init__(reader)
        self.reader = reader
        self.found = found
        self.joblib = joblib
        self.wrappers = 0

    def find_class(self, module, name):
        if self.proto < 3 and self.fix_imports:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        if not isinstance(module, str) or not isinstance(name, str):
            raise pickle.UnpicklingError("global names must be strings")
        if not _IDENT.fullmatch(module) or not _IDENT.fullmatch(name):
            raise pickle.UnpicklingError("not an importable global")  # the import would fail here too
        self._record(module, name)
        return _stand_in(module, name)

    def _record(self, module: str, name: str) -> None:
        if (module, name) not in self.found:
            if len(self.found) >= MAX_GLOBALS:
                raise ScanLimit(f"more than {MAX_GLOBALS} distinct globals")
            self.found[(module, name)] = True

    def persistent_load(self, pid):
        return _Stub()

    def get_extension(self, code):
        # CPython registers no extension codes (copyreg.add_extension is for the application to call), so a
        # loader stops here with "unregistered extension code", as the scan does.
        raise pickle.UnpicklingError(f"unregistered extension code {code}")

    def load_binbytes(self):
        (size,) = struct.unpack("<I", self.read(4))
        self.append(_skip_bytes(self, size))

    def load_binbytes8(self):
        (size,) = struct.unpack("<Q", self.read(8))
        self.append(_skip_bytes(self, size))

    def load_bytearray8(self):
        (size,) = struct.unpack("<Q", self.read(8))
        self.append(_skip_bytes(self, size))

    def load_binunicode(self):
        (size,) = struct.unpack("<I", self.read(4))
        self.append(_skip_bytes(self, size, str))

    def load_binunicode8(self):
        (size,) = struct.unpack("<Q", self.read(8))
        self.append(_skip_bytes(self, size, str))

    def load_binstring(self):
        (size,) = struct.unpack("<i", self.read(4))
        if size < 0:
            raise pickle.UnpicklingError("BINSTRING pickle has negative byte count")
        self.append(_skip_bytes(self, size))

    def load_build(self):
        inst = self.stack[-2] if len(self.stack) >= 2 else None
        super().load_build()
        if self.joblib and getattr(inst, "_global", None) == JOBLIB_WRAPPER:
            self.wrappers += 1
            _skip_joblib_array(self, inst.state)

    def load_frame(self):
        (size,) = struct.unpack("<Q", self.read(8))
        if size > MAX_FRAME:  # pickle writes frames of 64 KiB: only a crafted stream has a larger one
            if len(self.reader.peek(min(size, MAX_FRAME + 1))) < min(size, MAX_FRAME + 1):
                raise pickle.UnpicklingError("pickle exhausted before end of frame")  # where a loader stops
            raise ScanLimit("a pickle frame larger than 1 MiB")
        self._unframer.load_frame(size)

    for _op, _fn in (
        (pickle.BINBYTES, load_binbytes),
        (pickle.BINBYTES8, load_binbytes8),
        (pickle.BYTEARRAY8, load_bytearray8),
        (pickle.BINUNICODE, load_binunicode),
        (pickle.BINUNICODE8, load_binunicode8),
        (pickle.BINSTRING, load_binstring),
        (pickle.BUILD, load_build),
        (pickle.FRAME, load_frame),
    ):
        dispatch[_op[0]] = _fn
    del _op, _fn


_DTYPE = re.compile(r"[<>|=]?([a-zA-Z])(\d*)")
_SIZES = {"b": 1, "?": 1, "e": 2, "f": 4, "d": 8, "g": 16, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8,
          "Q": 8, "B": 1}  # fmt: skip


def _dtype_info(dtype) -> tuple[bool, int]:
    """(has objects, item size) of a pickled numpy dtype stand-in: ``numpy.dtype(code, …)`` plus its state."""
    args = getattr(dtype, "args", ())
    state = getattr(dtype, "state", None)
    if not args or not isinstance(args[0], str):
        raise ScanLimit("a joblib array with an unreadable dtype")
    match = _DTYPE.fullmatch(args[0])
    if match is None:
        raise ScanLimit(f"a joblib array with dtype {args[0][:40]!r}")
    kind, digits = match.groups()
    if kind == "O":
        return True, 8
    elsize = state[5] if isinstance(state, tuple) and len(state) > 5 and isinstance(state[5], int) else -1
    if isinstance(state, tuple) and len(state) > 4 and isinstance(state[4], dict):  # structured: look inside
        for field in state[4].values():
            if isinstance(field, tuple) and field and _dtype_info(field[0])[0]:
                return True, elsize
    if elsize > 0:
        return False, elsize
    if digits:
        return False, int(digits)
    if kind in _SIZES:
        return False, _SIZES[kind]
    raise ScanLimit(f"a joblib array with dtype {args[0][:40]!r}")


def _skip_joblib_array(unpickler: Recorder, state) -> None:
    """Consume the array data ``joblib.load`` reads right after a NumpyArrayWrapper is built."""
    if not isinstance(state, dict):
        raise ScanLimit("a joblib array wrapper without its state")
    shape = state.get("shape")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ScanLimit("a joblib array with an unreadable shape")
    has_objects, itemsize = _dtype_info(state.get("dtype"))
    if has_objects:  # a nested pickle, loaded with the same unpickler rules
        nested = Recorder(unpickler.reader, unpickler.found, joblib=True)
        nested.load()
        return
    if state.get("numpy_array_alignment_bytes") is not None:
        pad = unpickler.reader.read(1)
        if pad:
            unpickler.reader.skip(pad[0])
    count = 1
    for n in shape:
        count *= n
    if unpickler.reader.skip(count * itemsize) < count * itemsize:
        raise pickle.UnpicklingError("truncated joblib array data")


def _read_pickles(open_reader, found: dict, *, joblib: bool) -> tuple[int, int, str | None]:
    """Read consecutive pickles (torch's legacy format has five) until the data stops being one.

    Returns (pickles read completely, joblib arrays seen, the error that ended the last one, if any).
    """
    reader = open_reader()
    complete = wrappers = 0
    while True:
        recorder = Recorder(reader, found, joblib=joblib)
        before = len(found)
        try:
            if reader.at_eof():
                break
            recorder.load()
        except (ScanLimit, MemoryError):
            raise
        except RecursionError:
            raise ScanLimit("a pickle nested too deeply") from None
        except Exception as exc:  # noqa: BLE001 - where a loader would stop too (bad opcode, bad data, EOF)
            wrappers += recorder.wrappers
            if complete and len(found) == before:
                return complete, wrappers, None  # raw data after the pickles (torch legacy storages)
            return complete, wrappers, f"{type(exc).__name__}: {exc}"[:200]
        complete += 1
        wrappers += recorder.wrappers
    return complete, wrappers, None


def scan_pickle_stream(open_reader) -> dict:
    """Globals a loader could resolve from the pickle data ``open_reader()`` yields (called once per reading).

    ``{"globals": [[module, name], …], "pickles": n, "error": str | None}``; ``pickles`` is 0 when the data
    is not a pickle at all (it fails before naming any global).
    """
    found: dict = {}
    complete, wrappers, error = _read_pickles(open_reader, found, joblib=True)
    if wrappers:  # also read it as plain pickle.load would, without joblib's raw array data
        _read_pickles(open_reader, found, joblib=False)
    if not complete and not found:
        return {"globals": [], "pickles": 0, "error": None}
    return {"globals": sorted(list(g) for g in found), "pickles": max(complete, 1), "error": error}


def scan_pickle_bytes(data: bytes) -> dict:
    """``scan_pickle_stream`` over bytes in memory (for tests and small members)."""
    return scan_pickle_stream(lambda: Reader(io.BytesIO(data)))
