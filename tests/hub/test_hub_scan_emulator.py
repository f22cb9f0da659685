"""The sandbox's unpickling emulation on crafted streams: framing, long arguments, trailing data, joblib's
raw array data read both ways, extension codes, and the format sniffing that decides what gets scanned."""

from __future__ import annotations

import io
import os
import pickle

import joblib
import numpy as np
import pytest
import torch
from hubtools import seeded_bytes

from hub_server.scanning import policy
from hub_server.scanning.detect import sniff
from hub_server.scanning.emulator import ScanLimit, scan_pickle_bytes
from hub_server.scanning.sandbox import scan_path

LIMITS = {"max_bytes": 1 << 30, "ratio": 1100, "floor": 128 << 20}


def test_large_arguments_are_skipped_inside_and_outside_frames():
    big = b"x" * 200_000
    data = pickle.dumps([big, "y" * 100_000, {"k": bytearray(70_000)}], protocol=5)
    assert scan_pickle_bytes(data) == {"globals": [], "pickles": 1, "error": None}
    framed = b"\x80\x04\x95" + (100_010).to_bytes(8, "little") + b"\x8e" + (100_000).to_bytes(8, "little")
    framed += b"z" * 100_000 + b"."
    assert scan_pickle_bytes(framed)["error"] is None


def test_a_text_argument_past_the_limit_is_a_limit_or_the_end_not_a_desync():
    # it ends (a loader would read on): refused as a limit
    with pytest.raises(ScanLimit):
        scan_pickle_bytes(b"V" + b"a" * (2 << 20) + b"\n" + pickle.dumps(os.system, protocol=0))
    # it runs to the end of the data: a loader fails on it before doing anything, as the scan does (text)
    assert scan_pickle_bytes(b"V" + b"a" * (2 << 20)) == {"globals": [], "pickles": 0, "error": None}


def test_torch_legacy_trailing_storage_bytes_end_the_scan_quietly(tmp_path):
    torch.save({"w": torch.arange(1000.0)}, tmp_path / "m.pt", _use_new_zipfile_serialization=False)
    found = scan_path(str(tmp_path / "m.pt"), **LIMITS)
    assert found["pickles"] == 5 and found["errors"] == []
    assert policy.verdict(found)["status"] == "safe"


def test_joblib_array_bytes_are_also_read_as_plain_pickle_would_read_them(tmp_path):
    buf = io.BytesIO()
    joblib.dump({"a": np.zeros(2)}, buf, compress=0)
    data = buf.getvalue()
    at = data.rindex(b"\0" * 16)  # the array's 16 bytes, after a padding-length byte and its padding
    pad = next(i for i in range(at - 1, 0, -1) if data[i] != 0xFF)
    # joblib.load skips ord("N") = 78 bytes of "padding"; pickle.load runs them
    payload = b"0cos\nsystem\n(S'echo'\ntR0"
    payload += b"N0" * ((78 - len(payload)) // 2)
    forged = data[:pad] + b"N" + payload + data[at:]
    assert len(payload) == 78
    (tmp_path / "m.joblib").write_bytes(forged)
    assert joblib.load(io.BytesIO(forged.replace(b"cos\nsystem", b"cos\ngetcwd")))["a"].shape == (2,)
    found = scan_path(str(tmp_path / "m.joblib"), **LIMITS)
    assert ["os", "system"] in found["globals"]
    assert policy.verdict(found)["status"] == "unsafe"


def test_extension_codes_end_the_stream_as_in_a_loader():
    assert scan_pickle_bytes(b"\x80\x02\x82\x01)R.")["pickles"] == 0  # unregistered: nothing runs
    found = scan_pickle_bytes(b"\x80\x02cos\nsystem\n\x82\x01)R.")
    assert found["globals"] == [["os", "system"]] and found["error"].startswith("UnpicklingError")
    assert policy.verdict(found)["status"] == "unsafe"


def test_python_text_and_random_bytes_are_not_pickles():
    for text in (b"import torch\nfrom x import y\n", b"class Net:\n    pass\n", b"---\nlicense: mit\n---\n"):
        assert sniff(text, text, len(text)) is None
        assert scan_pickle_bytes(text)["pickles"] == 0
    for seed in range(400):
        data = seeded_bytes(4096, seed=seed)
        assert policy.verdict(scan_pickle_bytes(data))["status"] == "not-applicable"


@pytest.mark.parametrize(
    "head,fmt",
    [
        (b"\x80\x05\x95", "pickle"),
        (b"cos\nsystem\n(S'x'\ntR.", "pickle"),
        (b"x\x9c", "zlib"),
        (b"xyz", None),
        (b"\x1f\x8b\x08", "gzip"),
        (b"BZh9", "bz2"),
        (b"\x93NUMPY\x01\x00", "npy"),
        (b"PK\x03\x04", "zip"),
        (b"GGUF\x03\x00\x00\x00", None),
        (b'{"architectures": []}', None),
    ],
)
def test_sniffing(head, fmt):
    assert sniff(head, head, len(head)) == fmt


def test_allow_list_and_labels():
    assert policy.safety("torch._utils", "_rebuild_tensor_v2") == "innocuous"
    assert policy.safety("torch", "BFloat16Storage") == "innocuous"
    assert policy.safety("builtins", "eval") == "dangerous"
    assert policy.safety("operator", "getitem") in ("dangerous", "suspicious")
    assert policy.safety("sklearn.linear_model", "LogisticRegression") == "suspicious"
    record = policy.verdict({"globals": [["builtins", "eval"]], "pickles": 1})
    assert "builtins.eval [dangerous]" in policy.refusal("m.pkl", record)
    assert (
        policy.refusal("m.pkl", policy.verdict({"limit": "too big"}))
        == "m.pkl (could not be scanned within limits: too big)"
    )
