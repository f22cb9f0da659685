"""`resnet-model demo`: the whole tutorial in one command."""

from __future__ import annotations

import argparse

from ._common import add_command, positive_float

EXAMPLES = ["resnet-model demo", "resnet-model demo --epochs 3 --out /tmp/demo-output"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add `demo` and its arguments."""
    from ..demo import DEFAULT_EPOCHS, DEFAULT_OUT

    parser = add_command(
        sub,
        "demo",
        help="train → push to an embedded Hub → reload pinned in a fresh process",
        description=(
            "Train a small ResNet on scikit-learn's digits, push it to an embedded Hub, reload it pinned at the "
            "pushed commit in a fresh process without resnet_model, and report held-out accuracy."
        ),
        examples=EXAMPLES,
        run=run,
    )
    parser.add_argument(
        "--epochs", type=positive_float, default=DEFAULT_EPOCHS, help=f"training epochs (default: {DEFAULT_EPOCHS})"
    )
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default: {DEFAULT_OUT})")
    parser.set_defaults(environment={"HF_HUB_OFFLINE": "0"})  # the demo talks only to its own loopback Hub


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    from ..demo import demo

    demo(epochs=args.epochs, out=args.out, verbose=args.verbose)
    return 0
