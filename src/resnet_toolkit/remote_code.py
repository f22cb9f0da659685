"""Everything a ``trust_remote_code=True`` load would import, read from a repo's JSON config files.

One function for every reader: ``resnet-model audit`` (which then fetches and hashes the files) and the
Hub's web pages (the custom-code banner). Standard library only, so the server can use it without the
toolkit's dependencies and the toolkit without the server's.

Transformers imports remote code from:
- ``auto_map`` of ``config.json`` (Auto model and config classes, and ``AutoTokenizer`` as a fallback),
  ``tokenizer_config.json`` (``AutoTokenizer``; older files hold a bare list), ``preprocessor_config.json``
  (image processors, feature extractors, processors), ``processor_config.json`` and
  ``video_preprocessor_config.json``;
- ``custom_pipelines.<task>.impl`` of ``config.json`` (``pipeline(task, trust_remote_code=True)``).
A reference is ``module.Class`` (``module.py`` of the same repo) or ``other/repo--module.Class`` (another
repo's default branch unless ``code_revision`` is given).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CONFIG_FILES = (
    "config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "video_preprocessor_config.json",
    "tokenizer_config.json",
)


@dataclass(frozen=True)
class CodeReference:
    """One class a remote-code load would import."""

    source: str  # the config file naming it
    key: str  # the auto_map key ("AutoModel") or "custom_pipelines.<task>"
    reference: str  # as written: "module.Class" or "other/repo--module.Class"
    repo: str | None  # the other repo, or None for the repo itself
    module_file: str  # "module.py"
    class_name: str


def _reference(source: str, key: str, text: str) -> CodeReference:
    repo, _, target = text.partition("--") if "--" in text else ("", "", text)
    module, _, class_name = target.rpartition(".")
    return CodeReference(source, key, text, repo or None, f"{module or target}.py", class_name)


def _auto_map_items(auto_map: object) -> list[tuple[str, object]]:
    if isinstance(auto_map, Mapping):
        return list(auto_map.items())
    if isinstance(auto_map, list | tuple):  # tokenizer_config.json of older releases: [slow, fast]
        return [("AutoTokenizer", list(auto_map))]
    return []


def code_references(configs: Mapping[str, object]) -> list[CodeReference]:
    """The classes named by parsed config files (``{"config.json": {...}, ...}``), in a stable order."""
    out: list[CodeReference] = []
    for source in [*CONFIG_FILES, *sorted(set(configs) - set(CONFIG_FILES))]:
        data = configs.get(source)
        if not isinstance(data, Mapping):
            continue
        for key, value in _auto_map_items(data.get("auto_map")):
            for text in value if isinstance(value, list | tuple) else [value]:
                if isinstance(text, str) and text:
                    out.append(_reference(source, str(key), text))
        pipelines = data.get("custom_pipelines") if source == "config.json" else None
        for task, spec in pipelines.items() if isinstance(pipelines, Mapping) else ():
            impl = spec.get("impl") if isinstance(spec, Mapping) else None
            if isinstance(impl, str) and impl:
                out.append(_reference(source, f"custom_pipelines.{task}", impl))
    return out
