"""The model card (README.md) written next to every converted or trained model, and filled in when pushed."""

from __future__ import annotations

import os
import re
from pathlib import Path

CARD_FILE = "README.md"
USAGE_HEADING = "## How to use"  # the section `push` rewrites; a card without it is the user's own and is kept
_PINNED = re.compile(r'revision="([0-9a-f]{40})"')

_LOAD_LOCAL = """This folder holds the modelling code next to the weights, so loading it runs that code:

```python
from transformers import AutoImageProcessor, AutoModelForImageClassification

model = AutoModelForImageClassification.from_pretrained("{folder}", trust_remote_code=True)
processor = AutoImageProcessor.from_pretrained("{folder}")
```

`resnet-model push {folder} USER/REPO` uploads it and fills this section in with the repo id and the commit to pin."""

_LOAD_PINNED = """The modelling code ships with the weights: pin the commit you reviewed.{endpoint_note}

```python
from transformers import AutoImageProcessor, AutoModelForImageClassification

model = AutoModelForImageClassification.from_pretrained("{repo}", revision="{sha}", trust_remote_code=True)
processor = AutoImageProcessor.from_pretrained("{repo}", revision="{sha}")
```

Before moving the pin to a newer commit, review what changed:
`resnet-model audit {repo} --revision NEW_SHA --against {sha}`."""


def render_card(
    title: str,
    description: str,
    *,
    folder_name: str = ".",
    metrics: dict[str, float] | None = None,
    dataset: str | None = None,
) -> str:
    """A model card for a local folder: metadata (with `model-index` results), title, description and usage."""
    from huggingface_hub import EvalResult, ModelCardData

    results = [
        EvalResult(
            task_type="image-classification",
            dataset_type=dataset,
            dataset_name=dataset,
            dataset_split="test",
            metric_type=name,
            metric_value=value,
        )
        for name, value in (metrics or {}).items()
    ]
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        tags=["timm", "resnet", "custom_code"],
        model_name=title if results else None,
        eval_results=results or None,
    )
    usage = _LOAD_LOCAL.format(folder=folder_name)
    return f"---\n{data.to_yaml()}\n---\n\n# {title}\n\n{description}\n\n{USAGE_HEADING}\n\n{usage}\n"


def write_card(folder: str | os.PathLike, title: str, description: str, **kwargs) -> Path:
    """Write `render_card(...)` as `folder/README.md`; returns its path."""
    path = Path(folder) / CARD_FILE
    path.write_text(render_card(title, description, **kwargs), encoding="utf-8")
    return path


def is_generated(text: str) -> bool:
    """Whether a card has the usage section `push` fills in (cards written by `convert` and `train` do)."""
    return f"\n{USAGE_HEADING}\n" in text


def pin_card(text: str, repo: str, sha: str, endpoint: str | None = None) -> str | None:
    """The card with its usage section naming `repo` pinned at `sha`; None for a card this toolkit did not write."""
    head, found, _ = text.partition(f"\n{USAGE_HEADING}\n")
    if not found:
        return None
    note = f"\nThis repo lives on a self-hosted Hub: set `HF_ENDPOINT={endpoint}` first." if endpoint else ""
    usage = _LOAD_PINNED.format(repo=repo, sha=sha, endpoint_note=note)
    return f"{head}\n{USAGE_HEADING}\n\n{usage}\n"


def pinned_sha(text: str) -> str | None:
    """The commit a filled-in card pins, if any."""
    match = _PINNED.search(text)
    return match.group(1) if match else None
