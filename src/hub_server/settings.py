"""The hub's settings: one object read from ``HUB_*`` environment variables, overridden by CLI flags.

Several processes started with the same settings (same database, object store, data volume and
secret) serve one hub.
"""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .fsutil import atomic_write

GiB = 1024**3


class HubSettings(BaseSettings):
    """Where the hub keeps its data and how it behaves; every field can be set as ``HUB_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore", validate_assignment=True)

    root: Path = Field(Path("hub-data"), description="data directory: git repos, temp files, default database")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<root>/hub.db")
    object_store: str | None = Field(None, description="object store: a directory (default <root>/objects)")
    secret_key: SecretStr | None = Field(
        None, description="signing secret shared by replicas; default <root>/secret.key"
    )
    scan_uploads: bool = Field(
        True, description="refuse uploads whose pickles name globals outside the allow-list (or cannot be scanned)"
    )
    scan_timeout: float = Field(120.0, gt=0, description="seconds (wall clock and CPU) one file's scan may take")
    scan_memory_mb: int = Field(1024, ge=128, description="address space of the scanning subprocess, in MiB")
    scan_max_bytes: int = Field(4 * GiB, ge=1, description="bytes a scan may decompress out of one file")
    scan_workers: int = Field(2, ge=1, le=64, description="scans running at once in one server process")
    header_timeout: float = Field(20.0, gt=0, description="seconds a client has to send a request's headers")
    max_commit_operations: int = Field(25_000, ge=1, description="file operations in one commit")
    max_path_depth: int = Field(64, ge=1, description="folders a file path may be nested in")
    lfs_mode: Literal["auto", "always", "never"] = Field(
        "auto", description="who is offered LFS uploads: auto = huggingface_hub (0.x: LFS batch API, later: Xet)"
    )
    lfs_threshold: int = Field(10 * 1024 * 1024, ge=1, description="inline files at or over this size go to LFS")
    max_commit_bytes: int = Field(8 * GiB, ge=1, description="largest commit request body accepted")
    max_lfs_bytes: int = Field(50 * GiB, ge=1, description="largest LFS object accepted")
    tree_page_size: int = Field(1000, ge=1, le=100_000)
    commits_page_size: int = Field(50, ge=1, le=10_000)

    @field_validator("root")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return Path(value).expanduser().resolve()

    def signing_secret(self) -> bytes:
        """The configured secret, or the data directory's ``secret.key`` (generated once, mode 0600)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode("utf-8")
        path = self.root / "secret.key"
        if not path.exists():
            tmp = self.root / f".secret.{uuid.uuid4().hex}.tmp"
            atomic_write(tmp, secrets.token_bytes(32), mode=0o600)
            try:
                os.link(tmp, path)  # atomic and exclusive: when processes race, one secret wins
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_bytes()
