"""`resnet-model verify`: parity of a folder or repo against timm, running no remote code."""

from __future__ import annotations

import argparse

from ._common import add_command, add_hub_options

EXAMPLES = [
    "resnet-model verify resnet18-hf --timm resnet18",
    "resnet-model verify alice/custom-resnet50d --revision 9687f95a939a370bbf3c5dc23804a9c8c19d801b --timm resnet50d",
]


def register(sub: argparse._SubParsersAction) -> None:
    """Add `verify` and its arguments."""
    parser = add_command(
        sub,
        "verify",
        help="parity report against timm",
        description=(
            "Load the weights of a folder or repo into this package's classes and into timm's model, and compare "
            "their outputs. Runs no remote code. Exit status 1 when they differ."
        ),
        examples=EXAMPLES,
        run=run,
    )
    parser.add_argument("source", metavar="DIR_OR_REPO", help="model folder or repo id")
    parser.add_argument("--timm", required=True, metavar="NAME", help="timm variant to compare with")
    parser.add_argument("--revision", metavar="SHA", help="repo revision")
    add_hub_options(parser)


def run(args: argparse.Namespace) -> int:
    """Print the parity report; 1 when it fails."""
    from ..verify import verify

    report = verify(args.source, timm_name=args.timm, revision=args.revision, token=args.token)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1
