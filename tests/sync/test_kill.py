"""SIGKILL at a few points of a sync, each followed by a resumed run: the destination
equals a clean run's, row for row (bench/sync_kill.py does 20 random points)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sync.kill import run, snapshot


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[object, ...]]]:
    directory = tmp_path_factory.mktemp("clean")
    assert run(directory) == 0
    return snapshot(directory)


def test_a_clean_run_loads_every_table(clean: dict[str, list[tuple[object, ...]]]) -> None:
    assert {table: len(rows) for table, rows in clean.items()} == {
        "items": 120,
        "items__tags": 108,
        "events": 9,
        "guests": 13,
        "guests__tags": 13,
    }


@pytest.mark.parametrize("kill_at", [1, 4, 9, 14, 22])
def test_a_run_killed_then_resumed_equals_a_clean_run(
    tmp_path: Path, kill_at: int, clean: dict[str, list[tuple[object, ...]]]
) -> None:
    assert run(tmp_path, kill_at=kill_at) != 0
    assert run(tmp_path) == 0
    assert snapshot(tmp_path) == clean


def test_a_second_run_killed_early_loads_its_later_resources_when_resumed(
    tmp_path: Path,
) -> None:
    assert run(tmp_path) == 0
    first = snapshot(tmp_path)
    assert run(tmp_path, kill_at=2) != 0  # in the second run's first resource
    served: list[str] = []
    assert run(tmp_path, seen=served) == 0
    assert any(path.startswith("/events") for path in served)
    assert any(path.startswith("/events/") and path.endswith("/guests") for path in served)
    again = snapshot(tmp_path)
    assert again["events"] == first["events"]  # merged: the same records once
    assert len(again["guests"]) == 2 * len(first["guests"])  # appended by each run
