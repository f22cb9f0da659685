"""`resnet-model predict`: classify images, showing the commit and every code file that runs."""

from __future__ import annotations

import argparse

from ._common import add_command, add_hub_options, positive_int

EXAMPLES = [
    "resnet-model predict digits-run/model digit.png --trust-remote-code",
    "resnet-model predict alice/digits-resnet digit.png --revision SHA --trust-remote-code --require-pinned",
]


def register(sub: argparse._SubParsersAction) -> None:
    """Add `predict` and its arguments."""
    parser = add_command(
        sub,
        "predict",
        help="classify images (remote code only with --trust-remote-code)",
        description=(
            "Classify images with a model folder or Hub repo. Shows the repo, the commit and every code file "
            "(sha256) that runs; refuses remote code without --trust-remote-code."
        ),
        examples=EXAMPLES,
        run=run,
    )
    parser.add_argument("source", metavar="DIR_OR_REPO", help="model folder or repo id")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    parser.add_argument("--revision", metavar="SHA", help="commit SHA (a branch or tag works, with a warning)")
    parser.add_argument("--top-k", type=positive_int, default=5, metavar="K", help="labels per image (default: 5)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the repo's code to run")
    parser.add_argument("--require-pinned", action="store_true", help="refuse a revision that is not a full commit SHA")
    parser.add_argument(
        "--no-fast-path",
        dest="fast_path",
        action="store_false",
        default=None,
        help="run the model as loaded (default: the fastest engine measured on this machine, from 5 images on)",
    )
    add_hub_options(parser)


def run(args: argparse.Namespace) -> int:
    """Print the source, its code files and the top labels per image."""
    from ..predict import predict

    predict(
        args.source,
        args.images,
        revision=args.revision,
        top_k=args.top_k,
        trust_remote_code=args.trust_remote_code,
        require_pinned=args.require_pinned,
        token=args.token,
        fast_path=args.fast_path,
    )
    return 0
