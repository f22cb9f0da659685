"""Model behaviour: Transformers output conventions, input checks, losses, weight init and round trips."""

from __future__ import annotations

import pytest
import timm
import torch
from model_utils import randomize_batchnorm_stats
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

import resnet_model
from resnet_model import ResnetConfig, ResnetModel, ResnetModelForImageClassification


def test_positional_call_and_pixel_values_keyword(tiny_config, images):
    model = ResnetModelForImageClassification(tiny_config).eval()
    with torch.no_grad():
        assert torch.equal(model(images).logits, model(pixel_values=images).logits)
    assert model.main_input_name == "pixel_values"


def test_return_dict_false_gives_tuples(tiny_config, images):
    model = ResnetModelForImageClassification(tiny_config).eval()
    labels = torch.tensor([0, 4])
    with torch.no_grad():
        out = model(images, labels=labels)
        loss, logits = model(images, labels=labels, return_dict=False)
        (features, pooled) = ResnetModel(tiny_config).eval()(images, return_dict=False)
    assert torch.equal(loss, out.loss) and torch.equal(logits, out.logits)
    assert features.dim() == 4 and pooled.shape == (2, features.shape[1])


def test_hidden_states_match_timm_forward_intermediates(tiny_config, images):
    model = ResnetModelForImageClassification(tiny_config).eval()
    with torch.no_grad():
        out = model(images, output_hidden_states=True)
        final, intermediates = model.model.forward_intermediates(images)
        features = ResnetModel(tiny_config).eval()
        features.load_state_dict(model.state_dict())
        base = features(images, output_hidden_states=True)
    assert len(out.hidden_states) == 5
    for ours, theirs in zip(out.hidden_states, intermediates, strict=True):
        assert torch.equal(ours, theirs)
    assert [h.shape[1] for h in base.hidden_states] == tiny_config.stage_channels
    assert torch.equal(base.last_hidden_state, final)


def test_wrong_channel_count_or_rank_names_the_expected_shape(tiny_config):
    model = ResnetModelForImageClassification(tiny_config)
    with pytest.raises(ValueError, match=r"\(batch_size, 3, height, width\)"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(batch_size, 3, height, width\)"):
        model(torch.randn(3, 32, 32))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[1.0]])


def test_labels_out_of_range_raise_a_clear_error(tiny_config, images):
    model = ResnetModelForImageClassification(tiny_config)
    with pytest.raises(ValueError, match=r"class indices in \[0, 4\].*\[5\]"):
        model(images, labels=torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="one class index per image"):
        model(images, labels=torch.tensor([0, 1, 2]))
    # -100 is the ignore index, as in torch and Transformers
    assert torch.isfinite(model(images, labels=torch.tensor([1, -100])).loss)


def test_single_label_loss_is_cross_entropy(tiny_config, images):
    model = ResnetModelForImageClassification(tiny_config).eval()
    labels = torch.tensor([1, 3])
    out = model(images, labels=labels)
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    assert model.config.problem_type == "single_label_classification"


def test_multi_label_and_regression_follow_problem_type(tiny_config, images):
    multi = ResnetModelForImageClassification(tiny_config).eval()
    targets = torch.tensor([[1.0, 0, 1, 0, 0], [0, 1, 0, 0, 1]])
    out = multi(images, labels=targets)
    assert torch.allclose(out.loss, torch.nn.functional.binary_cross_entropy_with_logits(out.logits, targets))
    assert multi.config.problem_type == "multi_label_classification"
    regression_config = ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=1, stem_width=16)
    regression = ResnetModelForImageClassification(regression_config).eval()
    values = torch.tensor([0.5, -1.0])
    out = regression(images, labels=values)
    assert torch.allclose(out.loss, torch.nn.functional.mse_loss(out.logits.squeeze(-1), values))


def test_fresh_model_follows_timm_initialisation(tiny_config):
    torch.manual_seed(0)
    model = ResnetModelForImageClassification(tiny_config)
    block = model.model.layer1[0]
    assert torch.count_nonzero(block.bn2.weight) == 0  # timm's zero_init_last
    assert torch.all(block.bn1.weight == 1)
    conv = model.model.layer2[0].conv1.weight
    expected_std = (2.0 / (conv.shape[0] * conv.shape[2] * conv.shape[3])) ** 0.5  # kaiming fan_out
    assert abs(conv.std().item() / expected_std - 1) < 0.1


def test_library_mode_round_trip_is_exact(tmp_path, tiny_config, images):
    resnet_model.register()
    model = ResnetModelForImageClassification(tiny_config).eval()
    randomize_batchnorm_stats(model)
    model.save_pretrained(tmp_path)
    for loader in (AutoModelForImageClassification, ResnetModelForImageClassification):
        reloaded = loader.from_pretrained(tmp_path).eval()
        assert type(reloaded) is ResnetModelForImageClassification
        original, loaded = model.state_dict(), reloaded.state_dict()
        assert original.keys() == loaded.keys()
        for key in original:
            assert torch.equal(original[key], loaded[key]), key
    features = AutoModel.from_pretrained(tmp_path)
    assert isinstance(features, ResnetModel) and isinstance(AutoConfig.from_pretrained(tmp_path), ResnetConfig)
    on_disk = load_file(tmp_path / "model.safetensors")
    assert all(k.startswith("model.") for k in on_disk)


def test_missing_head_is_initialised_and_the_rest_kept(tmp_path, images):
    base = ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=0)
    features = ResnetModel(base).eval()
    randomize_batchnorm_stats(features)
    features.save_pretrained(tmp_path)
    classifier = ResnetModelForImageClassification.from_pretrained(tmp_path, num_labels=4)
    assert classifier.config.num_classes == 4 and classifier.model.fc.out_features == 4
    weight = classifier.model.fc.weight
    assert torch.isfinite(weight).all() and weight.abs().sum() > 0
    for key, value in features.state_dict().items():
        assert torch.equal(classifier.state_dict()[key], value), key


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_from_pretrained_with_dtype(tmp_path, tiny_config, images, dtype):
    ResnetModelForImageClassification(tiny_config).save_pretrained(tmp_path)
    model = ResnetModelForImageClassification.from_pretrained(tmp_path, dtype=dtype).eval()
    assert model.dtype == dtype and model.model.conv1.weight.dtype == dtype
    if dtype is torch.bfloat16:
        with torch.no_grad():
            assert model(images).logits.dtype == dtype  # float32 input is cast to the model's dtype


def test_gradient_checkpointing_gives_the_same_gradients(tiny_config, images):
    torch.manual_seed(0)
    plain = ResnetModelForImageClassification(tiny_config).train()
    checkpointed = ResnetModelForImageClassification(tiny_config).train()
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.activation_checkpointing_enable()
    assert checkpointed.model.grad_checkpointing and checkpointed.is_activation_checkpointing
    labels = torch.tensor([0, 2])
    plain(images, labels=labels).loss.backward()
    checkpointed(images, labels=labels).loss.backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_load_state_dict_accepts_a_bare_timm_state_dict(images):
    reference = timm.create_model("resnet18", pretrained=False, num_classes=5).eval()
    model = ResnetModelForImageClassification(ResnetConfig.from_timm("resnet18", num_classes=5)).eval()
    model.load_state_dict(reference.state_dict())
    with torch.no_grad():
        assert torch.equal(model(images).logits, reference(images))


def test_a_classifier_needs_classes():
    with pytest.raises(ValueError, match="num_classes"):
        ResnetModelForImageClassification(ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=0))
