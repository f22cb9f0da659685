"""Parity report of a saved folder or Hub repo against timm, loading weights only (no remote code runs)."""

from __future__ import annotations

import os

from .errors import CheckFailed, UserError
from .parity import ParityReport, compare


def verify(
    source: str | os.PathLike, *, timm_name: str, revision: str | None = None, token: str | None = None
) -> ParityReport:
    """Load `source`'s weights into our own classes and into timm's `timm_name`, and compare their outputs."""
    import timm

    from resnet_model import ResnetConfig, ResnetModelForImageClassification

    from .remote import default_token, resolve_source

    token = default_token(token)
    where = resolve_source(str(source), revision, token)
    try:
        config = ResnetConfig.from_pretrained(where.location, revision=where.revision, token=token)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read a ResNet config from {where.label}: {str(error).splitlines()[0]}") from None
    try:
        timm_model = timm.create_model(
            timm_name, pretrained=False, num_classes=config.num_classes, in_chans=config.input_channels
        )
    except RuntimeError:
        raise UserError(f"unknown --timm model {timm_name!r}") from None
    model = ResnetModelForImageClassification.from_pretrained(
        where.location, revision=where.revision, config=config, token=token
    )
    ours = {k.removeprefix("model."): v for k, v in model.state_dict().items()}
    theirs = timm_model.state_dict()
    problems = sorted(set(ours) ^ set(theirs)) + sorted(
        k for k in set(ours) & set(theirs) if ours[k].shape != theirs[k].shape
    )
    if problems:
        shown = ", ".join(problems[:8]) + (f", … ({len(problems)} in all)" if len(problems) > 8 else "")
        raise CheckFailed(f"{where.label} does not have the architecture of timm {timm_name!r}: {shown}")
    timm_model.load_state_dict(ours, strict=True)
    return compare(model, timm_model, timm_name)
