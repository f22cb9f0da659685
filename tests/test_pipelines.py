"""`pipeline("image-classification")` and `pipeline("image-feature-extraction")` on a folder and on a Hub repo."""

from __future__ import annotations

import json

import pytest
import torch
from isolation import TRANSFORMERS_MAJORS, run_isolated
from test_image_processor import sample_images
from transformers import AutoImageProcessor

from resnet_model import ResnetConfig, ResnetModel, ResnetModelForImageClassification

LABELS = ["astronaut", "coffee", "cat", "rocket", "temple", "flower"]

PIPELINES = """
import json, sys, pathlib, torch, transformers
from PIL import Image
from transformers import pipeline
model, images_dir, revision = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3] or None
images = [Image.open(p).convert("RGB") for p in sorted(images_dir.glob("*.png"))]
classify = pipeline("image-classification", model=model, revision=revision, trust_remote_code=True)
ranked = classify(images, top_k=2)
extract = pipeline("image-feature-extraction", model=model, revision=revision, trust_remote_code=True)
features = [extract(image, pool=True, return_tensors=True) for image in images]
torch.save(torch.cat(features), images_dir / "features.pt")
(images_dir / "result.json").write_text(json.dumps({"version": transformers.__version__, "ranked": ranked}))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny classifier with named labels saved to a folder, the sample images as PNGs, and eager references."""
    root = tmp_path_factory.mktemp("pipelines")
    torch.manual_seed(0)
    config = ResnetConfig(
        block_type="basic",
        layers=[1, 1, 1, 1],
        stem_width=16,
        id2label=dict(enumerate(LABELS)),
        pretrained_cfg={"input_size": [3, 64, 64], "interpolation": "bilinear", "crop_pct": 0.9},
    )
    model = ResnetModelForImageClassification(config).eval()
    model.save_pretrained(root / "model")
    images = sample_images()
    (root / "images").mkdir()
    for i, image in enumerate(images):
        image.save(root / "images" / f"{i}.png")
    pixels = AutoImageProcessor.from_pretrained(root / "model")(images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        probabilities = model(pixel_values=pixels).logits.softmax(-1)
        features = ResnetModel.from_pretrained(root / "model").eval()(pixel_values=pixels).pooler_output
    return root, probabilities, features


def _check(images_dir, probabilities: torch.Tensor, features: torch.Tensor, major: str) -> None:
    result = json.loads((images_dir / "result.json").read_text())
    assert result["version"].startswith(major)
    for ranked, row in zip(result["ranked"], probabilities, strict=True):
        top = row.topk(2)
        assert [r["label"] for r in ranked] == [LABELS[int(i)] for i in top.indices]
        assert [r["score"] for r in ranked] == pytest.approx(top.values.tolist(), abs=1e-5)
    got = torch.load(images_dir / "features.pt")
    assert got.shape == features.shape == (len(LABELS), 512)
    assert (got - features).abs().max().item() <= 1e-5


@pytest.mark.parametrize("t4", TRANSFORMERS_MAJORS)
def test_pipelines_on_a_folder(saved, t4):
    root, probabilities, features = saved
    run_isolated(PIPELINES, str(root / "model"), str(root / "images"), "", cwd=root, t4=t4)
    _check(root / "images", probabilities, features, "4.57" if t4 else "5.")


@pytest.fixture(scope="module")
def hub_repo(saved, tmp_path_factory):
    """The saved folder pushed to a repo on a hub served in-process; yields (endpoint, repo id, commit sha)."""
    hub_server = pytest.importorskip("hub_server")
    from huggingface_hub import HfApi

    root, _, _ = saved
    with hub_server.running_hub(tmp_path_factory.mktemp("hub-root")) as hub:
        api = HfApi(endpoint=hub.endpoint, token=hub.add_user("vision"))
        repo_id = api.create_repo("vision/tiny-resnet").repo_id
        commit = api.upload_folder(folder_path=root / "model", repo_id=repo_id, commit_message="tiny resnet")
        yield hub.endpoint, repo_id, commit.oid


@pytest.mark.parametrize("t4", TRANSFORMERS_MAJORS)
@pytest.mark.slow
def test_pipelines_on_a_hub_repo_at_a_pinned_revision(saved, hub_repo, t4):
    root, probabilities, features = saved
    endpoint, repo_id, sha = hub_repo
    images_dir = root / f"hub-{int(t4)}"
    images_dir.mkdir()
    for png in (root / "images").glob("*.png"):
        (images_dir / png.name).write_bytes(png.read_bytes())
    env = {"HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "HF_HOME": str(images_dir / "hf_home")}
    run_isolated(PIPELINES, repo_id, str(images_dir), sha, cwd=root, t4=t4, env=env)
    _check(images_dir, probabilities, features, "4.57" if t4 else "5.")
    modules = list((images_dir / "hf_home").rglob("modeling_resnet.py"))
    assert modules and all(sha in str(path) for path in modules)  # the code came from the pinned commit
