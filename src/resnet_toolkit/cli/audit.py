"""`resnet-model audit`: the code a `trust_remote_code` load would run, listed, hashed and diffed, never run."""

from __future__ import annotations

import argparse

from ._common import add_command, add_hub_options

EXAMPLES = [
    "resnet-model audit alice/custom-resnet50d --revision 9687f95a939a370bbf3c5dc23804a9c8c19d801b",
    "resnet-model audit alice/custom-resnet50d --revision NEW_SHA --against OLD_SHA   # review before moving a pin",
    "resnet-model audit ./custom-resnet50d                                           # a local folder",
]


def register(sub: argparse._SubParsersAction) -> None:
    """Add `audit` and its arguments."""
    parser = add_command(
        sub,
        "audit",
        help="list and diff the code a remote-code load would run",
        description=(
            "List every code file a trust_remote_code load of a repo (at --revision) or a local folder would "
            "execute (auto_map entries, cross-repo references, relative imports) with sha256, and diff it against "
            "a trusted version. Reads text only; nothing is imported. Exit status 1 when the code differs."
        ),
        examples=EXAMPLES,
        run=run,
    )
    parser.add_argument("source", metavar="REPO_OR_DIR", help="repo id or model folder")
    parser.add_argument(
        "--revision", metavar="SHA", help="commit SHA of a repo to audit (default: what main points to now)"
    )
    parser.add_argument("--against", metavar="DIR_OR_SHA", help="trusted code: a folder or a commit SHA of the repo")
    add_hub_options(parser)


def run(args: argparse.Namespace) -> int:
    """Print the audit; 1 when the code differs from the trusted version."""
    from ..audit import audit

    return 0 if audit(args.source, revision=args.revision, against=args.against, token=args.token) else 1
