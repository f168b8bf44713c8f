"""Reading an access log file as a test waits for its lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.nodes import wait_until


def lines_of(path: Path) -> list[dict[str, Any]]:
    """The JSON lines written so far (whole lines only)."""
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def wait_lines(path: Path, count: int) -> list[dict[str, Any]]:
    """The first ``count`` lines, once there are that many."""
    wait_until(lambda: len(lines_of(path)) >= count, f"{count} access log line(s) in {path}")
    return lines_of(path)[:count]


def line_for(path: Path, field: str, value: object) -> dict[str, Any]:
    """The first line whose ``field`` is ``value``, once written."""
    found: list[dict[str, Any]] = []

    def seen() -> bool:
        found[:] = [line for line in lines_of(path) if line.get(field) == value]
        return bool(found)

    wait_until(seen, f"a line with {field}={value!r} in {path}")
    return found[0]
