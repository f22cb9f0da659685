"""`resnet-model train`: fine-tune with `transformers.Trainer` on an image folder or scikit-learn's digits."""

from __future__ import annotations

import argparse

from ._common import add_command, add_hub_options, positive_float, positive_int
from .push import add_push_options, push_folder

EXAMPLES = [
    "resnet-model train --data digits --epochs 1                       # tiny ResNet, writes train-output/",
    "resnet-model train --data digits --variant tiny --epochs 3 --out digits-run",
    "resnet-model train --data ./photos --variant resnet18 --epochs 10 --image-size 128 --out photos-run",
    "resnet-model train --data digits --variant tiny --epochs 3 --out digits-run --push alice/digits-resnet",
]


def register(sub: argparse._SubParsersAction) -> None:
    """Add `train` and its arguments."""
    from ..train import DEFAULT_OUT, DEFAULTS, VARIANT_HELP

    parser = add_command(
        sub,
        "train",
        help="fine-tune with transformers.Trainer",
        description=(
            "Train on an image folder (one sub-folder per class) or scikit-learn's bundled digits; writes DIR/model "
            "(with a model card), metrics.json, loss_accuracy.png and confusion_matrix.png. Warns when the "
            "held-out accuracy is near chance and says why."
        ),
        examples=EXAMPLES,
        run=run,
    )
    parser.add_argument("--data", required=True, metavar="DIR|digits", help="image folder, or 'digits'")
    parser.add_argument("--variant", default="tiny", metavar="NAME_OR_CONFIG", help=f"{VARIANT_HELP} (default: tiny)")
    parser.add_argument("--epochs", required=True, type=positive_float, metavar="N", help="training epochs")
    parser.add_argument(
        "--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder, new or empty (default: {DEFAULT_OUT})"
    )
    parser.add_argument("--push", metavar="REPO", help="push DIR/model to this repo afterwards")
    for flag, kind, key, text in (
        ("--batch-size", positive_int, "batch_size", "batch size"),
        ("--lr", positive_float, "learning_rate", "peak learning rate"),
        ("--warmup", positive_float, "warmup", "warm-up: a fraction of the steps (< 1) or a number of steps"),
        ("--test-size", positive_float, "test_size", "held-out fraction"),
    ):
        parser.add_argument(flag, type=kind, default=DEFAULTS[key], dest=key, help=f"{text} (default: {DEFAULTS[key]})")
    parser.add_argument("--image-size", type=positive_int, metavar="N", help="resize images to N×N")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    add_push_options(parser)
    add_hub_options(parser)


def run(args: argparse.Namespace) -> int:
    """Train, then push if asked."""
    from ..train import train

    result = train(
        args.data,
        args.variant,
        epochs=args.epochs,
        out=args.out,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup=args.warmup,
        image_size=args.image_size,
        test_size=args.test_size,
        seed=args.seed,
        overwrite=args.overwrite,
        verbose=args.verbose,
    )
    if args.push:
        push_folder(str(result.model_dir), args.push, args)
    return 0
