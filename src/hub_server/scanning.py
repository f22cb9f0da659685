"""Pickle import scanning of uploaded files with picklescan."""

from __future__ import annotations

import logging
from pathlib import Path

from picklescan import scanner

SCANNED_EXTENSIONS = frozenset(
    {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".dat", ".data", ".npy", ".npz", ".zip", ".7z"}
)
logging.getLogger("picklescan").setLevel(logging.ERROR)


def should_scan(path: str) -> bool:
    """Whether a repo path names a pickle-based (or archive) file that is scanned on upload."""
    name = path.rsplit("/", 1)[-1].lower()
    return any(name.endswith(ext) for ext in SCANNED_EXTENSIONS)


def scan_file(file_path: Path, repo_path: str) -> dict:
    """Scan a file's pickle imports: ``{"status": "safe"|"suspicious"|"unsafe"|"error", "imports": […]}``."""
    ext = "." + repo_path.rsplit(".", 1)[-1].lower() if "." in repo_path else None
    try:
        with open(file_path, "rb") as fh:
            result = scanner.scan_bytes(fh, repo_path, ext)
    except Exception as exc:  # picklescan raises on some malformed archives
        return {"status": "error", "imports": [], "message": f"{type(exc).__name__}: {exc}"[:500]}
    imports = [{"module": g.module, "name": g.name, "safety": g.safety.value} for g in result.globals]
    if any(g["safety"] == "dangerous" for g in imports) or result.infected_files:
        status = "unsafe"
    elif result.scan_err:
        status = "error"
    elif any(g["safety"] == "suspicious" for g in imports):
        status = "suspicious"
    else:
        status = "safe"
    return {"status": status, "imports": imports}
