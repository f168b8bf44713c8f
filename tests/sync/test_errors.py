"""What a run that cannot go on prints: one line naming the resource, the key at fault
and where it is in the sources file; never a traceback, never a password."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.client.scripted import closed_port
from tests.sync.pages import Reply, serving
from tests.sync.test_sync import sync

pytestmark = pytest.mark.timeout(60)

ITEMS = """\
sources:
  - name: api
    base_url: {base}
    resources:
      - name: items
        path: {path}
        data_selector: {selector}
        primary_key: {key}
{extra}destination: duckdb:///{database}
"""


def items_config(tmp_path: Path, base: str, **changes: str) -> str:
    fields = {"path": "/items", "selector": "data", "key": "id", "extra": "", **changes}
    return ITEMS.format(base=base, database=tmp_path / "out.duckdb", **fields)


def pages(path: str, query: dict[str, str]) -> Any:
    if path != "/items":
        return Reply({"detail": "not found"}, status=404)
    return {"data": [{"id": 1, "updatedAt": None, "at": "2024-01-01"}], "total_pages": 1}


def test_a_data_selector_naming_nothing_is_named_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving(pages) as (base, _):
        assert sync(tmp_path, items_config(tmp_path, base, selector="dat")) == 1
    err = capsys.readouterr().err
    assert "sources.yaml:7: sources[0].resources[0].data_selector: " in err
    assert "no key 'dat' in the response (it has 'data', 'total_pages')" in err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("quiver sync: ")]) == 1


def test_a_cursor_path_naming_nothing_stops_the_run_at_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incremental = "        incremental: {cursor_path: updated_at, initial_value: '2024'}\n"
    with serving(pages) as (base, _):
        assert sync(tmp_path, items_config(tmp_path, base, extra=incremental)) == 1
    err = capsys.readouterr().err
    assert "sources.yaml:9: sources[0].resources[0].incremental.cursor_path: " in err
    assert "no record of a page has 'updated_at'" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"path": "/nothere"}, "answered 404"),
        ({"key": "[id, code]"}, "without the primary key 'code'"),
        ({"base": "unreachable"}, "cannot connect to 127.0.0.1"),
    ],
)
def test_a_dry_run_fails_with_the_one_line_a_run_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, str], message: str
) -> None:
    changes = dict(change)
    with serving(pages) as (base, _):
        if changes.pop("base", None):
            base = f"http://127.0.0.1:{closed_port()}"
        assert sync(tmp_path, items_config(tmp_path, base, **changes), "--dry-run") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("quiver sync: ")]
    assert line.startswith("quiver sync: api.items: ") and message in line


def test_a_destination_password_is_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = textwrap.dedent(
        f"""\
        sources:
          - name: api
            base_url: http://127.0.0.1:{closed_port()}
            resources: [{{name: items, path: /items}}]
        destination: postgresql://postgres:hunter2@127.0.0.1:{closed_port()}/test
        """
    )
    assert sync(tmp_path, text) == 1
    err = capsys.readouterr().err
    assert "postgres:***@127.0.0.1" in err and "hunter2" not in err
