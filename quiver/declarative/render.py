"""What the declarative commands print: a diff per entity, and documents as YAML."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

import yaml

_SIGNS = {"added": "+", "changed": "~", "removed": "-"}


def as_yaml(document: object) -> str:
    """``document`` in the layout of quiver.yaml: keys in their order, block style."""
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def diff_lines(diff: dict[str, list[dict[str, Any]]]) -> Iterator[str]:
    """One line per entity (``+ target billing``), changed ones followed by what
    changed in them as a unified diff of their YAML, then a count."""
    for group in ("added", "changed", "removed"):
        for change in diff.get(group, []):
            head = f"{_SIGNS[group]} {change['kind']} {change['name']}"
            position = change.get("position")
            if position:
                head += f" (moved from position {position[0] + 1} to {position[1] + 1})"
            yield head
            if group == "changed" and change.get("before") != change.get("after"):
                yield from _inner_diff(change.get("before"), change.get("after"))
    counts = {group: len(diff.get(group, [])) for group in ("added", "changed", "removed")}
    total = sum(counts.values())
    if total == 0:
        yield "no changes"
    else:
        parts = ", ".join(f"{n} {group}" for group, n in counts.items() if n)
        yield f"{total} change{'s' if total != 1 else ''}: {parts}"


def _inner_diff(before: object, after: object) -> Iterator[str]:
    old, new = as_yaml(before).splitlines(), as_yaml(after).splitlines()
    for line in difflib.unified_diff(old, new, lineterm="", n=1):
        if line.startswith(("---", "+++", "@@")):
            continue
        yield f"    {line}"
