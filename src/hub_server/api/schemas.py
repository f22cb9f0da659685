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
    gated: str | bool | None = None


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


class DiscussionBody(_Body):
    """Body of ``POST …/discussions``."""

    title: str
    description: str | None = None
    pullRequest: bool = False


class CommentBody(_Body):
    """Body of ``POST …/discussions/{num}/comment``."""

    comment: str


class TitleBody(_Body):
    """Body of ``POST …/discussions/{num}/title``."""

    title: str


class StatusBody(_Body):
    """Body of ``POST …/discussions/{num}/status``."""

    status: str
    comment: str | None = None


class MergeBody(_Body):
    """Body of ``POST …/discussions/{num}/merge``: with ``expected_head`` (or the Hub-style ``parent``), only
    that commit of the pull request is merged."""

    comment: str | None = None
    expected_head: str | None = None
    parent: str | None = None


class EditCommentBody(_Body):
    """Body of ``POST …/discussions/{num}/comment/{id}/edit``."""

    content: str


class MoveBody(_Body):
    """Body of ``POST /api/repos/move``."""

    fromRepo: str
    toRepo: str
    type: str | None = None


class SquashBody(_Body):
    """Body of ``POST …/super-squash/{branch}``."""

    message: str | None = None


class LfsDeleteBody(_Body):
    """Body of ``POST …/lfs-files/batch``."""

    deletions: dict


class AccessRequestBody(_Body):
    """Body of ``POST …/user-access-request/handle`` and ``…/grant``."""

    user: str | None = None
    requestId: str | None = None
    status: str | None = None
    rejectionReason: str | None = None
