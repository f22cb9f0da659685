"""`resnet-model push`: upload a model folder as one commit and print the SHA to pin."""

from __future__ import annotations

import argparse

from ._common import add_command, add_hub_options

EXAMPLES = [
    "resnet-model push digits-run/model alice/digits-resnet --endpoint http://127.0.0.1:8765 --token hf_...",
    'resnet-model push custom-resnet50d alice/custom-resnet50d --message "Fine-tuned 3 more epochs"',
]


def register(sub: argparse._SubParsersAction) -> None:
    """Add `push` and its arguments."""
    parser = add_command(
        sub,
        "push",
        help="upload a model folder; prints the commit SHA to pin",
        description=(
            "Upload a saved model folder as one commit (nothing when no file changed); print the commit SHA and "
            "the from_pretrained line pinned to it. A model card written by convert or train is filled in with "
            "the repo id and that SHA in a second commit."
        ),
        examples=EXAMPLES,
        run=run,
    )
    parser.add_argument("dir", metavar="DIR", help="saved model folder")
    parser.add_argument("repo", metavar="REPO", help="repo id, e.g. user/my-resnet")
    add_push_options(parser)
    add_hub_options(parser)


def add_push_options(parser: argparse.ArgumentParser) -> None:
    """`--private` and `--message` (shared with `train --push`)."""
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--message", metavar="TEXT", help='commit message (default: "Upload model")')


def run(args: argparse.Namespace) -> int:
    """Push and print the pinned line."""
    push_folder(args.dir, args.repo, args)
    return 0


def push_folder(folder: str, repo: str, args: argparse.Namespace) -> str:
    """Push `folder` to `repo` with the hub, push and output options in `args`; returns the commit to pin."""
    from ..hub import push

    return push(
        folder,
        repo,
        endpoint=args.endpoint,
        token=args.token,
        private=args.private,
        message=args.message,
        verbose=args.verbose,
    )
