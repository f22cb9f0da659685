"""The classifier returns its loss, so `Trainer` trains it and resumes from its checkpoints exactly."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import Trainer, TrainingArguments

from resnet_model import ResnetConfig, ResnetModelForImageClassification


def _dataset(n: int = 16) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(n, 3, 32, 32, generator=gen)
    labels = torch.randint(0, 4, (n,), generator=gen)
    return [{"pixel_values": images[i], "labels": labels[i]} for i in range(n)]


def _model() -> ResnetModelForImageClassification:
    torch.manual_seed(0)
    config = ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=4, stem_width=16)
    return ResnetModelForImageClassification(config)


def _args(out, **kwargs) -> TrainingArguments:
    defaults = dict(
        output_dir=str(out),
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        max_steps=6,
        save_strategy="steps",
        save_steps=3,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
    )
    defaults.update(kwargs)
    return TrainingArguments(**defaults)


def test_trainer_lowers_the_loss_on_a_fixed_batch(tmp_path):
    data = _dataset(8)
    model = _model()
    batch = {k: torch.stack([d[k] for d in data]) for k in data[0]}
    model.eval()
    with torch.no_grad():
        before = model(**batch).loss.item()
    Trainer(model=model, args=_args(tmp_path, max_steps=15, save_strategy="no"), train_dataset=data).train()
    model.eval()
    with torch.no_grad():
        after = model(**batch).loss.item()
    assert after < before * 0.7, (before, after)


@pytest.mark.slow
def test_resume_from_checkpoint_restores_weights_exactly(tmp_path):
    data = _dataset()
    straight = _model()
    Trainer(model=straight, args=_args(tmp_path / "a"), train_dataset=data).train()
    checkpoint = tmp_path / "a" / "checkpoint-3"
    saved = load_file(checkpoint / "model.safetensors")
    assert (checkpoint / "modeling_resnet.py").exists()  # checkpoints carry the code too

    resumed = _model()
    trainer = Trainer(model=resumed, args=_args(tmp_path / "b"), train_dataset=data)
    trainer.train(resume_from_checkpoint=str(checkpoint))
    final_straight, final_resumed = straight.state_dict(), resumed.state_dict()
    assert final_straight.keys() == final_resumed.keys() == saved.keys()
    for key in final_straight:
        assert torch.equal(final_straight[key], final_resumed[key]), key
