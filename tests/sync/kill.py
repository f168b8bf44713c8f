"""Killing ``quiver sync`` with SIGKILL mid-run, then resuming it: the harness of
tests/sync/test_kill.py (a few fixed points) and bench/sync_kill.py (random ones).

Each write mode is in: ``items`` replaces its tables, ``events`` merges, ``guests``
(a child of each event) appends. The source is served by an in-process HTTP server
that can hold one request until the test has killed the sync, so the kill lands at
a known point; the destination after the resumed run must equal, row for row, the
one a clean run leaves. A kill that comes after the run committed its end (while the
process exits) leaves nothing to resume: a run after it is a new run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import duckdb

from tests.sync.pages import items, serving

PAGES = 12
CONFIG = """\
sources:
  - name: shop
    base_url: {base}
    concurrency: 3
    resources:
      - name: items
        path: /items
        data_selector: data
        paginator: {{type: page_number, base_page: 1, total_path: total_pages}}
        write_mode: replace
      - name: events
        path: /events
        paginator: {{type: page_number, base_page: 1}}
        primary_key: id
        write_mode: merge
      - name: guests
        path: /events/{{event_id}}/guests
        params: {{event_id: {{type: resolve, resource: events, field: id}}}}
destination: duckdb:///{database}
batch_rows: 25
"""


def page(path: str, query: dict[str, str]) -> Any:
    if path == "/items":
        return {"data": items(int(query["page"])), "total_pages": PAGES}
    if path == "/events":
        number = int(query["page"])
        return [{"id": number * 10 + n} for n in range(3)] if number <= 3 else []
    event = int(path.split("/")[2])
    return [{"guest": f"{event}-{n}", "tags": [n]} for n in range(event % 4)]


class Holding:
    """Serves :func:`page`; request number ``at`` waits until :meth:`release`."""

    def __init__(self, at: int | None) -> None:
        self.at = at
        self.count = 0
        self.lock = threading.Lock()
        self.reached = threading.Event()
        self.released = threading.Event()

    def __call__(self, path: str, query: dict[str, str]) -> Any:
        with self.lock:
            self.count += 1
            number = self.count
        if number == self.at:
            self.reached.set()
            self.released.wait(30)
        return page(path, query)


def run(
    directory: Path,
    *,
    kill_at: int | None = None,
    delay: float = 0.0,
    seen: list[str] | None = None,
) -> int:
    """One ``quiver sync`` into ``directory/out.duckdb``: to its end, or killed when
    request ``kill_at`` arrives (``delay`` seconds later, the request held meanwhile
    when ``delay`` is 0). Returns its exit status; ``seen`` gets the requests served."""
    holding = Holding(kill_at if not delay else None)
    with serving(holding) as (base, requests):
        config = directory / "sources.yaml"
        config.write_text(CONFIG.format(base=base, database=directory / "out.duckdb"))
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        process = subprocess.Popen(
            [sys.executable, "-m", "quiver.cli", "sync", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            if kill_at is not None and not delay:
                if holding.reached.wait(60):
                    process.send_signal(signal.SIGKILL)
            elif kill_at is not None:
                _kill_later(process, requests, kill_at, delay)
            _, err = process.communicate(timeout=120)
        finally:
            holding.released.set()
            if process.poll() is None:
                process.kill()
                process.wait()
    if seen is not None:
        seen += requests
    if process.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(err.decode())
    return process.returncode


def _kill_later(process: subprocess.Popen[bytes], seen: list[str], at: int, delay: float) -> None:
    timer = threading.Event()
    while len(seen) < at and process.poll() is None:
        timer.wait(0.001)
    timer.wait(delay)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)


def finished(directory: Path) -> bool:
    """Whether the run committed its end (the source's state row says ``done``)."""
    with duckdb.connect(str(directory / "out.duckdb"), read_only=True) as connection:
        rows = connection.execute(
            "SELECT status FROM _quiver_sync_state WHERE resource = '' AND parent = ''"
        ).fetchall()
    return rows == [("done",)]


def snapshot(directory: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every loaded table's rows, sorted (the bookkeeping tables left out)."""
    with duckdb.connect(str(directory / "out.duckdb"), read_only=True) as connection:
        tables = [t for (t,) in connection.execute("SHOW TABLES").fetchall()]
        return {
            table: connection.execute(f'SELECT * FROM "{table}" ORDER BY ALL').fetchall()
            for table in tables
            if not table.startswith("_quiver")
        }
