"""A Markdown page per plugin, generated from its docstring and Config descriptions.

``python -m quiver.plugins.docs DIR`` writes ``DIR/<name>.md`` for every plugin;
a test keeps docs/plugins/ equal to what this produces.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from quiver.config.reference import describe_default, type_name
from quiver.plugins.base import Plugin
from quiver.plugins.builtin import BUILT_IN


def render(plugin: type[Plugin[Any]]) -> str:
    doc = " ".join((plugin.__doc__ or "").split())
    lines = [
        f"# `{plugin.name}`",
        "",
        doc,
        "",
        f"Priority {plugin.priority} (higher runs first); phases: {', '.join(plugin.phases())}.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    lines += _rows(plugin.Config)
    for key, model in _nested(plugin.Config):
        lines += [
            "",
            f"## `{key}`",
            "",
            f"{' '.join((model.__doc__ or '').split()) or f'The keys of `{key}`:'}",
            "",
            "| key | type | default | meaning |",
            "|---|---|---|---|",
            *_rows(model),
        ]
    if plugin.credential is not None:
        lines += [
            "",
            "## Credentials",
            "",
            f"A consumer lists its credentials under `credentials: {{{plugin.name}: [...]}}`, "
            "each with these keys:",
            "",
            "| key | type | default | meaning |",
            "|---|---|---|---|",
            *_rows(plugin.credential),
        ]
    return "\n".join(lines) + "\n"


def _rows(model: type[BaseModel]) -> list[str]:
    rows = []
    for key, field in model.model_fields.items():
        default = describe_default(field, nested=None)
        rows.append(
            f"| `{field.alias or key}` | {type_name(field.annotation)} | {default} "
            f"| {field.description} |"
        )
    return rows


def _nested(model: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    """The settings of ``model`` that are mappings of their own (directly, in a list,
    or optional), with their models."""
    found = []
    for key, field in model.model_fields.items():
        pending: list[object] = [field.annotation]
        while pending:
            annotation = pending.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found.append((field.alias or key, annotation))
                break
            pending.extend(get_args(annotation))
    return found


def write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for plugin in BUILT_IN:
        (directory / f"{plugin.name}.md").write_text(render(plugin))


if __name__ == "__main__":
    write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/plugins"))
