"""Applies racing from separate connections run one after the other: revision
numbers are unique and have no gaps, and every apply is recorded."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from quiver.store import Revision, open_store
from tests.support.catalog import built_in

APPLIES = 8


def document(writer: int, step: int) -> dict[str, Any]:
    return {"targets": [{"name": f"w{writer}", "url": f"http://127.0.0.1:{9000 + step}"}]}


def test_concurrent_applies_get_gap_free_numbers(store_url: str) -> None:
    open_store(store_url, built_in()).close()  # migrated once, before the race
    start = threading.Barrier(2, timeout=30)
    made: list[Revision | None] = []
    failures: list[BaseException] = []

    def writer(number: int) -> None:
        store = open_store(store_url, built_in())
        try:
            start.wait()
            for step in range(APPLIES):
                made.append(store.apply(document(number, step), author=f"writer {number}"))
        except BaseException as exc:
            failures.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    numbers = sorted(revision.number for revision in made if revision is not None)
    assert numbers == list(range(1, 2 * APPLIES + 1))
    store = open_store(store_url, built_in())
    assert [revision.number for revision in store.revisions()] == numbers
    assert store.current()["targets"][0]["name"] == store.revisions()[-1].author.replace(
        "writer ", "w"
    )
    store.close()


def test_reads_do_not_wait_for_a_write_in_progress(tmp_path: Path) -> None:
    path = tmp_path / "quiver.db"
    store = open_store(str(path), built_in())
    before = document(0, 0)
    store.apply(before, author="test")
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # as an apply holds it
        writer.execute("UPDATE head SET revision = revision")
        assert store.current() == before
        assert [revision.number for revision in store.revisions()] == [1]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        store.close()
