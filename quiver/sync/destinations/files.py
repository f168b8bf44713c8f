"""JSONL and Parquet files in a directory, committed by renaming a state file.

``_quiver_sync_state.json`` is the commit: it lists what the data files hold (the
length of each ``<table>.jsonl``, the part files under each ``<table>/`` of Parquet),
and is replaced by a rename after the data is on disk. Opening the directory drops
whatever a killed run wrote past it: a JSONL file is cut to its recorded length, a
part file the state does not list is removed, and a replace's swap of files the
state records as due is carried out.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from quiver.sync.destinations.base import Batch
from quiver.sync.schema import TYPE_NAMES, TYPES
from quiver.sync.state import STATE_TABLE, State

_STATE = STATE_TABLE + ".json"


class FileDestination:
    def __init__(self, directory: str, kind: str) -> None:
        self.root = Path(directory)
        self.root.mkdir(parents=True, exist_ok=True)
        self.kind = kind
        path = self.root / _STATE
        self.saved: dict[str, Any] = (
            orjson.loads(path.read_bytes())
            if path.exists()
            else {"states": [], "schema": [], "files": {}, "swaps": []}
        )
        self._recover()

    def schema(self) -> dict[str, dict[str, pa.DataType]]:
        tables: dict[str, dict[str, pa.DataType]] = {}
        for table, column, kind in self.saved["schema"]:
            columns = tables.setdefault(table, {})
            if column:
                columns[column] = TYPES[kind]
        return tables

    def states(self, source: str, resource: str) -> list[State]:
        rows = [State.from_row(tuple(r)) for r in self.saved["states"]]
        return sorted(
            (s for s in rows if (s.source, s.resource) == (source, resource)),
            key=lambda s: s.parent,
        )

    def commit(self, batch: Batch) -> None:
        saved = self.saved
        for table in batch.drops:
            self._remove(table)
            saved["files"].pop(table, None)
            saved["schema"] = [entry for entry in saved["schema"] if entry[0] != table]
        for change in batch.changes:
            saved["schema"].append([change.table, change.column, TYPE_NAMES.get(change.type, "")])
        for write in batch.writes:
            if write.rows.num_rows:
                saved["files"][write.table] = self._write(write.table, write.rows)
        saved["swaps"] = [list(swap) for swap in batch.swaps]
        for loaded, replaced in batch.swaps:
            saved["files"][replaced] = saved["files"].pop(loaded, None)
            saved["schema"] = [e for e in saved["schema"] if e[0] != replaced]
            saved["schema"] = [[replaced, *e[1:]] if e[0] == loaded else e for e in saved["schema"]]
        states = {tuple(row[:3]): row for row in saved["states"]}
        for state in batch.states:
            states[state.row()[:3]] = list(state.row())
        saved["states"] = list(states.values())
        self._save()
        self._recover()

    def _write(self, table: str, rows: pa.Table) -> Any:
        if self.kind == "jsonl":
            path = self.root / f"{table}.jsonl"
            with open(path, "ab") as file:
                file.truncate(self.saved["files"].get(table) or 0)
                file.write(_json_lines(rows))
                file.flush()
                os.fsync(file.fileno())
                return file.tell()
        parts: list[str] = list(self.saved["files"].get(table) or [])
        folder = self.root / table
        folder.mkdir(exist_ok=True)
        name = f"part-{len(parts):06d}.parquet"
        pq.write_table(rows, folder / (name + ".tmp"))
        os.replace(folder / (name + ".tmp"), folder / name)
        return [*parts, name]

    def _save(self) -> None:
        temporary = self.root / (_STATE + ".tmp")
        with open(temporary, "wb") as file:
            file.write(orjson.dumps(self.saved))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.root / _STATE)

    def _recover(self) -> None:
        """Make the files what the state says: finish a due swap, drop uncommitted data."""
        for loaded, replaced in self.saved["swaps"]:
            if self._path(loaded).exists():
                self._remove(replaced)
                os.replace(self._path(loaded), self._path(replaced))
        files = self.saved["files"]
        for table, recorded in files.items():
            path = self._path(table)
            if self.kind == "jsonl" and path.exists():
                with open(path, "ab") as file:
                    file.truncate(recorded or 0)
            elif path.is_dir():
                for part in path.iterdir():
                    if part.name not in (recorded or []):
                        part.unlink()

    def _path(self, table: str) -> Path:
        return self.root / (f"{table}.jsonl" if self.kind == "jsonl" else table)

    def _remove(self, table: str) -> None:
        path = self._path(table)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    def close(self) -> None:
        """Every commit is on disk already."""


def _json_lines(rows: pa.Table) -> bytes:
    """One JSON object per row (per record: Arrow has no JSON writer)."""
    columns = [
        pc.strftime(c, "%Y-%m-%dT%H:%M:%S") if pa.types.is_timestamp(c.type) else c
        for c in rows.columns
    ]
    plain = pa.table(columns, names=rows.column_names).to_pylist()
    return b"".join(orjson.dumps(row) + b"\n" for row in plain)
