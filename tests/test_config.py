"""ResnetConfig: the tutorial's fields and defaults, validation, labels, save/load."""

from __future__ import annotations

import json

import pytest
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

from resnet_model import ResnetConfig


def test_tutorial_defaults_and_resnet50d_example(tmp_path):
    config = ResnetConfig()
    assert (config.block_type, config.layers, config.num_classes, config.input_channels) == (
        "bottleneck",
        [3, 4, 6, 3],
        1000,
        3,
    )
    assert (config.cardinality, config.base_width, config.stem_width, config.stem_type, config.avg_down) == (
        1,
        64,
        64,
        "",
        False,
    )
    resnet50d_config = ResnetConfig(block_type="bottleneck", stem_width=32, stem_type="deep", avg_down=True)
    resnet50d_config.save_pretrained(tmp_path / "custom-resnet")
    saved = json.loads((tmp_path / "custom-resnet" / "config.json").read_text())
    assert saved["stem_type"] == "deep" and saved["auto_map"]["AutoConfig"] == "configuration_resnet.ResnetConfig"
    reloaded = ResnetConfig.from_pretrained(tmp_path / "custom-resnet")
    assert reloaded.to_dict() == resnet50d_config.to_dict()
    preset = ResnetConfig.from_timm("resnet50d")
    assert {k: getattr(preset, k) for k in ("stem_width", "stem_type", "avg_down", "layers")} == {
        k: getattr(resnet50d_config, k) for k in ("stem_width", "stem_type", "avg_down", "layers")
    }


def test_model_type_does_not_collide_with_a_builtin():
    assert ResnetConfig.model_type not in CONFIG_MAPPING_NAMES and "resnet" in CONFIG_MAPPING_NAMES


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("block_type", "resnet"),
        ("stem_type", "wide"),
        ("layers", [3, 4, 6]),
        ("layers", [3, 0, 6, 3]),
        ("layers", "3463"),
        ("num_classes", -1),
        ("num_classes", 2.5),
        ("input_channels", 0),
        ("cardinality", 0),
        ("base_width", -4),
        ("stem_width", 0),
        ("avg_down", "yes"),
        ("drop_rate", 1.5),
        ("drop_path_rate", -0.1),
    ],
)
def test_invalid_values_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        ResnetConfig(**{field: value})


def test_num_classes_drives_labels():
    config = ResnetConfig(num_classes=3)
    assert config.num_labels == 3
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}


def test_id2label_drives_num_classes_and_label2id():
    config = ResnetConfig(id2label={"0": "cat", "1": "dog"})
    assert config.num_classes == 2 and config.label2id == {"cat": 0, "dog": 1}
    assert ResnetConfig(num_labels=4).num_classes == 4


def test_setting_num_labels_keeps_num_classes_in_sync(tmp_path):
    config = ResnetConfig(num_classes=3)
    config.num_labels = 6
    assert config.num_classes == 6 and len(config.id2label) == 6
    config.save_pretrained(tmp_path)
    assert ResnetConfig.from_pretrained(tmp_path).num_classes == 6


def test_conflicting_label_information_is_refused():
    with pytest.raises(ValueError, match="num_classes"):
        ResnetConfig(num_classes=5, id2label={0: "a", 1: "b"})


def test_stale_label2id_is_rebuilt_from_id2label(tmp_path):
    config = ResnetConfig(id2label={0: "a", 1: "b"}, label2id={"a": 1, "b": 0, "c": 2})
    assert config.label2id == {"a": 0, "b": 1} and config.num_classes == 2
    # the Transformers flow that leaves label2id stale: from_pretrained(..., id2label=new)
    ResnetConfig(id2label={0: "x", 1: "y", 2: "z"}).save_pretrained(tmp_path / "old")
    renamed = ResnetConfig.from_pretrained(tmp_path / "old", id2label={0: "cat", 1: "dog", 2: "bird"})
    renamed.save_pretrained(tmp_path / "new")
    reloaded = ResnetConfig.from_pretrained(tmp_path / "new")
    assert reloaded.id2label == {0: "cat", 1: "dog", 2: "bird"}
    assert reloaded.label2id == {"cat": 0, "dog": 1, "bird": 2}


def test_labels_survive_save_and_load(tmp_path):
    ResnetConfig(id2label={0: "zero", 1: "one", 2: "two"}).save_pretrained(tmp_path)
    config = ResnetConfig.from_pretrained(tmp_path)
    assert config.id2label == {0: "zero", 1: "one", 2: "two"} and config.num_classes == 3


def test_timm_spelling_of_tiered_stem_is_stored_and_the_old_one_still_loads(tmp_path):
    assert ResnetConfig(stem_type="deep_tiered").stem_type == "deep_tiered"
    assert ResnetConfig.from_timm("resnet10t").stem_type == "deep_tiered"
    ResnetConfig(stem_type="deep_tiered").save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["stem_type"] == "deep_tiered"
    saved["stem_type"] = "deep-tiered"  # a config.json written before timm's spelling was adopted
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert ResnetConfig.from_pretrained(tmp_path).stem_type == "deep_tiered"


def test_imagenet_class_names_come_from_timm():
    config = ResnetConfig.from_timm("resnet18")
    assert config.num_classes == 1000
    assert config.id2label[0] == "tench, Tinca tinca" and config.id2label[999].startswith("toilet tissue")
    assert ResnetConfig.from_timm("resnet18", num_classes=3).id2label[0] == "LABEL_0"
