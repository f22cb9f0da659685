"""`resnet-model convert`: a timm ResNet as a ready-to-push Transformers folder."""

from __future__ import annotations

import argparse

from ._common import add_command, positive_int

EXAMPLES = [
    "resnet-model convert resnet18 --random-init --out resnet18-hf       # ImageNet class names included",
    "resnet-model convert resnet50d --checkpoint resnet50d.safetensors --out custom-resnet50d",
    "resnet-model convert resnet10t --random-init --labels classes.txt --out my-resnet",
]


def register(sub: argparse._SubParsersAction) -> None:
    """Add `convert` and its arguments."""
    parser = add_command(
        sub,
        "convert",
        help="turn a timm ResNet into a ready-to-push folder",
        description=(
            "Convert a timm ResNet (local checkpoint, timm's pretrained weights, or random init) into a folder with "
            "config, safetensors weights, image processor, modelling code and model card; checks parity with timm "
            "on the way. A 1000-class (or other ImageNet-sized) head gets timm's ImageNet class names."
        ),
        examples=EXAMPLES,
        run=run,
    )
    parser.add_argument("timm_name", metavar="TIMM_NAME", help="timm variant, e.g. resnet50d or resnet18.a1_in1k")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (must be new or empty)")
    parser.add_argument("--checkpoint", metavar="FILE", help="timm weights (.safetensors or torch file)")
    parser.add_argument("--random-init", action="store_true", help="no weights: timm's random initialisation")
    parser.add_argument("--num-classes", type=positive_int, metavar="N", help="classifier size (head re-initialised)")
    parser.add_argument("--labels", metavar="FILE", help="class names: JSON list/object or one per line")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")


def run(args: argparse.Namespace) -> int:
    """Convert, check parity, write the folder."""
    from ..convert import convert, read_labels

    labels = read_labels(args.labels) if args.labels else None
    convert(
        args.timm_name,
        out=args.out,
        checkpoint=args.checkpoint,
        random_init=args.random_init,
        num_classes=args.num_classes,
        labels=labels,
        overwrite=args.overwrite,
    )
    return 0
