"""Fresh-process reload for the demo: `python -P _reload_child.py REPO SHA DATA.npz OUT.json`.

`resnet_model` is made unimportable before anything else is imported, so the classes can only come from
the code downloaded from the Hub at the pinned commit.
"""

import importlib.abc
import sys


class _BlockResnetModel(importlib.abc.MetaPathFinder):
    """Refuse every import of `resnet_model` and its submodules."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "resnet_model":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None


sys.meta_path.insert(0, _BlockResnetModel())


def main(argv: list[str]) -> int:
    """Load the pinned repo through the Auto classes, classify the held-out images, write a JSON report."""
    import importlib.util
    import inspect
    import json
    import os
    import re
    from pathlib import Path

    import numpy as np
    import torch
    import transformers
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForImageClassification
    from transformers.utils import HF_MODULES_CACHE

    repo, sha, data_path, out_path = argv
    try:
        importlib.util.find_spec("resnet_model")
        importable = True
    except ModuleNotFoundError:
        importable = False
    model = AutoModelForImageClassification.from_pretrained(repo, revision=sha, trust_remote_code=True).eval()
    # TimmWrapperImageProcessor has only a PIL implementation (transformers 5 would first look for torchvision)
    backend = {"backend": "pil"} if int(transformers.__version__.split(".")[0]) >= 5 else {}
    processor = AutoImageProcessor.from_pretrained(repo, revision=sha, trust_remote_code=True, **backend)
    data = np.load(data_path)
    images = [Image.fromarray(image, mode="L") for image in data["images"]]
    with torch.no_grad():
        logits = model(pixel_values=processor(images, return_tensors="pt")["pixel_values"]).logits
    predictions = logits.argmax(-1).tolist()
    model_file = Path(inspect.getfile(type(model)))
    code_commit = model_file.parent.name if re.fullmatch(r"[0-9a-f]{40}", model_file.parent.name) else None
    snapshots = Path(os.environ["HF_HUB_CACHE"], "models--" + repo.replace("/", "--"), "snapshots")
    report = {
        "resnet_model_importable": importable,
        "resnet_model_loaded": any(name.split(".")[0] == "resnet_model" for name in sys.modules),
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "model_file": str(model_file),
        "model_code": str(model_file.relative_to(HF_MODULES_CACHE)),
        "code_commit": code_commit,
        "cached_snapshots": sorted(p.name for p in snapshots.iterdir()) if snapshots.is_dir() else [],
        "predictions": predictions,
        "labels": [model.config.id2label[p] for p in predictions],
        "accuracy": float(np.mean(np.array(predictions) == data["labels"])),
    }
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
