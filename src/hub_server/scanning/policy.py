"""Which globals a model pickle may name, and the verdict on a file from what its scan found.

An allow-list, not a deny-list: weights saved by ``torch.save``, numpy and joblib name a small set of
reconstruction helpers, containers and dtypes; every other global (a model class, ``__main__.X``,
``builtins.eval``, ``operator.getitem``…) makes the file refused unless the hub runs with
``--allow-unsafe-pickles``. picklescan's deny-list only labels globals "dangerous" rather than "suspicious".
"""

from __future__ import annotations

import re

from picklescan.scanner import _unsafe_globals

_TORCH_DTYPES = (
    "float16 float32 float64 bfloat16 half float double complex32 complex64 complex128 cfloat cdouble chalf "
    "uint8 uint16 uint32 uint64 int8 int16 int32 int64 short int long bool quint8 qint8 qint32 quint4x2 quint2x4 "
    "float8_e4m3fn float8_e5m2 float8_e4m3fnuz float8_e5m2fnuz float8_e8m0fnu float4_e2m1fn_x2 bits8 bits16 "
    "strided sparse_coo sparse_csr sparse_csc sparse_bsr sparse_bsc _mkldnn "
    "contiguous_format channels_last channels_last_3d preserve_format per_tensor_affine per_channel_affine "
    "per_tensor_symmetric per_channel_symmetric per_channel_affine_float_qparams Size device dtype finfo iinfo"
)

ALLOWED: dict[str, frozenset[str]] = {
    "torch._utils": frozenset(
        "_rebuild_tensor _rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_parameter _rebuild_parameter_with_state "
        "_rebuild_sparse_tensor _rebuild_nested_tensor _rebuild_device_tensor_from_numpy _rebuild_qtensor "
        "_rebuild_meta_tensor_no_storage _rebuild_wrapper_subclass _rebuild_device_tensor_from_cpu_tensor".split()
    ),
    "torch._tensor": frozenset({"_rebuild_from_type_v2"}),
    "torch": frozenset(_TORCH_DTYPES.split()) | frozenset({"Tensor"}),
    "torch.nn.parameter": frozenset({"Parameter"}),
    "torch.serialization": frozenset({"_get_layout"}),
    "collections": frozenset({"OrderedDict", "defaultdict", "Counter", "deque"}),
    "builtins": frozenset(
        "set frozenset list dict tuple slice complex range bytearray bytes str int float bool object".split()
    ),
    "_codecs": frozenset({"encode"}),
    "copyreg": frozenset({"_reconstructor"}),
    "numpy": frozenset({"dtype", "ndarray"}),
    "numpy.core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy._core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy.core.numeric": frozenset({"_frombuffer"}),
    "numpy._core.numeric": frozenset({"_frombuffer"}),
    "joblib.numpy_pickle": frozenset({"NumpyArrayWrapper"}),
    "argparse": frozenset({"Namespace"}),
}
# Families of harmless names: torch's typed storages, numpy's dtype classes.
ALLOWED_PATTERNS = (
    (re.compile(r"torch(\.cuda)?"), re.compile(r"[A-Za-z0-9]*Storage")),
    (re.compile(r"numpy\.dtypes"), re.compile(r"[A-Za-z0-9]*DType")),
)
BLOCKING = frozenset({"unsafe", "suspicious", "error"})


def is_allowed(module: str, name: str) -> bool:
    """Whether a model pickle may name ``module.name``."""
    if name in ALLOWED.get(module, ()):
        return True
    return any(m.fullmatch(module) and n.fullmatch(name) for m, n in ALLOWED_PATTERNS)


def _deny_listed(module: str, name: str) -> bool:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        rule = _unsafe_globals.get(".".join(parts[:i]))
        if rule == "*" or (i == len(parts) and rule is not None and name in rule):
            return True
    return False


def safety(module: str, name: str) -> str:
    """``innocuous`` (allow-listed), ``dangerous`` (known to run code) or ``suspicious`` (anything else)."""
    if is_allowed(module, name):
        return "innocuous"
    return "dangerous" if _deny_listed(module, name) else "suspicious"


def verdict(found: dict) -> dict:
    """The record of a file from the sandbox's findings: status, imports, format and notes."""
    if "limit" in found:
        return {"status": "error", "imports": [], "message": f"could not be scanned within limits: {found['limit']}"}
    imports = [{"module": m, "name": n, "safety": safety(m, n)} for m, n in found.get("globals", [])]
    levels = {i["safety"] for i in imports}
    out: dict = {"imports": imports, "format": found.get("format")}
    if "dangerous" in levels:
        out["status"] = "unsafe"
    elif "suspicious" in levels:
        out["status"] = "suspicious"
    elif found.get("pickles"):
        out["status"] = "safe"
    elif found.get("unscanned"):
        out["status"] = "unscanned"
    else:
        out["status"] = "not-applicable"
    notes = list(found.get("errors", [])) + list(found.get("unscanned", []))
    if notes:
        out["message"] = "; ".join(notes)[:1000]
    return out


def refusal(path: str, record: dict) -> str | None:
    """Why a file is refused (None when it is not): what it imports beyond the allow-list, or why it failed."""
    if record["status"] not in BLOCKING:
        return None
    if record["status"] == "error":
        return f"{path} ({record.get('message', 'scan failed')})"
    names = [f"{i['module']}.{i['name']} [{i['safety']}]" for i in record["imports"] if i["safety"] != "innocuous"]
    return f"{path} (pickle imports not on the allow-list: {', '.join(names[:20])})"
