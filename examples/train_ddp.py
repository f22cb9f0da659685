"""Fine-tune a ResNet with Trainer: bf16 autocast, gradient checkpointing, accuracy eval, checkpoints and resume.

Runs as one process or under `torchrun --nproc_per_node 2 examples/train_ddp.py ...` (DDP over gloo on CPU).
Each rank writes its final state dict to `<output-dir>/final_rank<r>.safetensors` so that ranks can be compared.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from skimage import data as skdata
from transformers import Trainer, TrainerCallback, TrainingArguments

from resnet_model import ResnetConfig, ResnetModelForImageClassification

IMAGES = ("astronaut", "coffee", "chelsea", "rocket")


def sample_dataset(image_size: int, per_class: int, seed: int) -> tuple[list[dict], list[str]]:
    """Random crops of scikit-image's sample photos, one class per photo, normalised like ImageNet."""
    gen = torch.Generator().manual_seed(seed)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    examples = []
    for label, name in enumerate(IMAGES):
        image = torch.from_numpy(np.ascontiguousarray(getattr(skdata, name)()[..., :3])).permute(2, 0, 1).float() / 255
        _, height, width = image.shape
        for _ in range(per_class):
            side = int(torch.randint(min(height, width) // 3, min(height, width), (1,), generator=gen))
            top = int(torch.randint(0, height - side + 1, (1,), generator=gen))
            left = int(torch.randint(0, width - side + 1, (1,), generator=gen))
            crop = image[:, top : top + side, left : left + side].unsqueeze(0)
            crop = torch.nn.functional.interpolate(crop, size=image_size, mode="bilinear", antialias=True)[0]
            examples.append({"pixel_values": (crop - mean) / std, "labels": torch.tensor(label)})
    return examples, list(IMAGES)


class BroadcastBuffersCallback(TrainerCallback):
    """At the end of training, give every rank rank 0's buffers (BatchNorm statistics), as DDP does before each forward.

    DDP keeps parameters identical on all ranks; BatchNorm running statistics are updated locally by each forward
    (SyncBatchNorm needs GPUs), so after the last step they differ by one local update until broadcast.
    """

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if model is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer.data, src=0)


def accuracy(prediction) -> dict:
    """Top-1 accuracy of a `Trainer` prediction."""
    return {"accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--save-steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4, help="per device")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--per-class", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CPU included)")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--resume", default=None, help="checkpoint folder, or 'last' for the latest in output-dir")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def build_trainer(args: argparse.Namespace) -> Trainer:
    """A `Trainer` for a tiny ResNet on the sample photos, configured from the command-line options."""
    train_set, labels = sample_dataset(args.image_size, args.per_class, seed=args.seed)
    eval_set, _ = sample_dataset(args.image_size, max(2, args.per_class // 4), seed=args.seed + 1)
    torch.manual_seed(args.seed)
    config = ResnetConfig(
        block_type="basic",
        layers=[1, 1, 1, 1],
        stem_width=16,
        id2label=dict(enumerate(labels)),
        pretrained_cfg={"input_size": [3, args.image_size, args.image_size], "crop_pct": 1.0},
    )
    model = ResnetModelForImageClassification(config)
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=16,
        learning_rate=args.learning_rate,
        bf16=args.bf16,
        gradient_checkpointing=args.gradient_checkpointing,
        eval_strategy="steps",
        eval_steps=args.save_steps,
        save_strategy="steps",
        save_steps=args.save_steps,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        ddp_backend="gloo" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        seed=args.seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        compute_metrics=accuracy,
        callbacks=[BroadcastBuffersCallback()],
    )
    return trainer


def main(argv: list[str] | None = None) -> Trainer:
    """Train (optionally resuming), evaluate, save the model and each rank's final state dict."""
    args = parse_args(argv)
    trainer = build_trainer(args)
    resume = args.resume
    if resume == "last":
        resume = True
    trainer.train(resume_from_checkpoint=resume)
    metrics = trainer.evaluate()
    rank = int(os.environ.get("RANK", "0"))
    out = Path(args.output_dir)
    state = {k: v.detach().contiguous().clone() for k, v in trainer.model.state_dict().items()}
    save_file(state, str(out / f"final_rank{rank}.safetensors"))
    if trainer.is_world_process_zero():
        trainer.save_model(str(out / "model"))
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return trainer


if __name__ == "__main__":
    main()
