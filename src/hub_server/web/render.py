"""Rendering for the web pages: templates, Markdown model cards, highlighted code, diffs, remote-code rows."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import jinja2
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_for_filename
from pygments.util import ClassNotFound

from resnet_toolkit.remote_code import code_references

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
_HERE = Path(__file__).parent
STATIC = _HERE / "static"

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)
templates.filters["q"] = lambda value: quote(str(value), safe="")
templates.filters["qpath"] = lambda value: quote(str(value), safe="/")
markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
pygments_css = HtmlFormatter().get_style_defs(".highlight")


def front_matter_split(text: str) -> tuple[str, str]:
    """Split a model card into its YAML header and Markdown body."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    return (match.group(1), text[match.end() :]) if match else ("", text)


def remote_code_entries(config: dict, repo_id: str, others: dict[str, dict] | None = None) -> list[dict]:
    """What `trust_remote_code=True` would run: one row per class named by `config` (config.json) and the
    `others` config files (tokenizer, processors): `auto_map` entries and `custom_pipelines`, cross-repo
    references marked. The same list `resnet-model audit` starts from."""
    rows = []
    for ref in code_references({**(others or {}), "config.json": config}):
        repo = ref.repo or ""
        rows.append(
            {
                "auto_class": ref.key,
                "source": ref.source,
                "repo": repo or repo_id,
                "external": bool(repo) and repo != repo_id,
                "linkable": not repo or bool(_REPO_ID.fullmatch(repo)),
                "file": ref.module_file,
                "class_name": ref.class_name,
            }
        )
    return rows


def highlight_code(path: str, text: str) -> str | None:
    try:
        lexer = get_lexer_for_filename(path, stripnl=False)
    except ClassNotFound:
        return None
    return highlight(text, lexer, HtmlFormatter(linenos="table", cssclass="highlight"))


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


templates.filters["size"] = _human_size


def _imports(imports: list[dict]) -> str:
    """A scan's imports as text: ``module.name``, with its safety unless allow-listed."""
    return ", ".join(
        f"{i['module']}.{i['name']}" + ("" if i.get("safety") == "innocuous" else f" ({i.get('safety')})")
        for i in imports
    )


templates.filters["imports"] = _imports


def diff_lines(text: str) -> list[tuple[str, str]]:
    """A unified diff as (css class, line) pairs."""
    out = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append((kind, line))
    return out


CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'"
