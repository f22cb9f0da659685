"""Request bodies of the JSON API routes (unknown fields are accepted, as the Hub does)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class CreateRepoBody(_Body):
    """Body of ``POST /api/repos/create``."""

    name: str
    organization: str | None = None
    type: str | None = None
    private: bool | None = None
    visibility: str | None = None


class DeleteRepoBody(_Body):
    """Body of ``DELETE /api/repos/delete``."""

    name: str
    organization: str | None = None
    type: str | None = None


class SettingsBody(_Body):
    """Body of ``PUT /api/{type}/{ns}/{name}/settings``."""

    private: bool | None = None
    visibility: str | None = None


class BranchBody(_Body):
    """Body of ``POST …/branch/{branch}``."""

    startingPoint: str | None = None


class TagBody(_Body):
    """Body of ``POST …/tag/{rev}``."""

    tag: str
    message: str | None = None


class ValidateYamlBody(_Body):
    """Body of ``POST /api/validate-yaml``."""

    content: str = ""
    repoType: str | None = None


class PreuploadFile(_Body):
    """One file in a preupload request."""

    path: str
    sample: str = ""
    size: int = 0


class PreuploadBody(_Body):
    """Body of ``POST …/preupload/{rev}``."""

    files: list[PreuploadFile]
    gitIgnore: str | None = None


class LfsObject(_Body):
    """One object in an LFS batch request."""

    oid: str
    size: int


class LfsBatchBody(_Body):
    """Body of the LFS batch API."""

    operation: str
    objects: list[LfsObject]
    transfers: list[str] | None = None


class LfsVerifyBody(_Body):
    """Body of the LFS verify call."""

    oid: str
    size: int
