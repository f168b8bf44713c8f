"""What the SQL destinations share: DDL from schema changes, merge by delete + insert,
replace by rename, state and schema rows in the same transaction as the data.

A dialect subclass says how to run a statement, how to load an Arrow table in one
bulk operation and how types are spelled.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from quiver.sync.columnar import PARENT_ID, ROW_ID
from quiver.sync.destinations.base import Batch, Write
from quiver.sync.schema import TYPE_NAMES, TYPES, Change
from quiver.sync.state import COLUMNS, SCHEMA_TABLE, STATE_TABLE, State

#: a row per schema change, in order (``seq``): what ``schema()`` replays
_SCHEMA_COLUMNS = (
    "seq",
    "table_name",
    "column_name",
    "change",
    "new_type",
    "old_type",
    "changed_at",
)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqlDestination(ABC):
    placeholder = "?"
    #: SQL type of each kept type (quiver.sync.schema.TYPES)
    types: dict[str, str] = {}

    @abstractmethod
    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def load(self, table: str, rows: pa.Table) -> None:
        """Insert ``rows`` into ``table`` (by column name) in one bulk operation."""
        ...

    @contextmanager
    def staged(self, keys: pa.Table, like: str) -> Iterator[str]:
        """``keys`` as a table SQL can join, typed as the same columns of ``like``: a
        temporary table of the batch's transaction (a failure rolls it back with it)."""
        names = ", ".join(quote(c) for c in keys.column_names)
        self.execute(f"CREATE TEMP TABLE _quiver_keys AS SELECT {names} FROM {quote(like)} LIMIT 0")
        self.load("_quiver_keys", keys)
        yield "_quiver_keys"
        self.execute("DROP TABLE _quiver_keys")

    def begin(self) -> None:
        self.execute("BEGIN")

    def end(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        self.execute("ROLLBACK")

    @abstractmethod
    def close(self) -> None: ...

    # -- shared ----------------------------------------------------------------------------

    def create_bookkeeping(self) -> None:
        self.begin()
        text = self.types["string"]
        number = self.types["int64"]
        columns = ", ".join(f"{c} {number if c in ('pages', 'rows') else text}" for c in COLUMNS)
        self.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} ({columns})")
        spelled = ", ".join(f"{c} {number if c == 'seq' else text}" for c in _SCHEMA_COLUMNS)
        self.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} ({spelled})")
        self.end()

    def schema(self) -> dict[str, dict[str, pa.DataType]]:
        tables: dict[str, dict[str, pa.DataType]] = {}
        rows = self.query(
            f"SELECT table_name, column_name, change, new_type FROM {SCHEMA_TABLE} ORDER BY seq"
        )
        for table, column, change, kind in rows:
            columns = tables.setdefault(table, {})
            if change != "table":
                columns[column] = TYPES[kind]
        return tables

    def states(self, source: str, resource: str) -> list[State]:
        p = self.placeholder
        rows = self.query(
            f"SELECT {', '.join(COLUMNS)} FROM {STATE_TABLE} "
            f"WHERE source = {p} AND resource = {p} ORDER BY parent",
            (source, resource),
        )
        return [State.from_row(row) for row in rows]

    def commit(self, batch: Batch) -> None:
        self.begin()
        try:
            self._apply(batch)
        except BaseException:
            self.rollback()
            raise
        self.end()

    def _apply(self, batch: Batch) -> None:
        p = self.placeholder
        for table in batch.drops:
            self.execute(f"DROP TABLE IF EXISTS {quote(table)}")
            self.execute(f"DELETE FROM {SCHEMA_TABLE} WHERE table_name = {p}", (table,))
        created = {c.table for c in batch.changes if c.kind == "table"}
        for change in batch.changes:
            if change.kind == "table":
                columns = [c for c in batch.changes if c.table == change.table and c.column]
                self._create(change.table, columns)
            elif change.table not in created:
                self._alter(change)
        self._record(batch.changes)
        for write in batch.writes:
            if write.delete is not None and write.delete.num_rows:
                self._delete(write)
            if write.rows.num_rows:
                self.load(write.table, write.rows)
        for loaded, replaced in batch.swaps:
            self.execute(f"DROP TABLE IF EXISTS {quote(replaced)}")
            self.execute(f"ALTER TABLE {quote(loaded)} RENAME TO {quote(replaced)}")
            self.execute(f"DELETE FROM {SCHEMA_TABLE} WHERE table_name = {p}", (replaced,))
            self.execute(
                f"UPDATE {SCHEMA_TABLE} SET table_name = {p} WHERE table_name = {p}",
                (replaced, loaded),
            )
        if batch.states:
            where = " AND ".join(f"{c} = {p}" for c in COLUMNS[:3])
            self.executemany(
                f"DELETE FROM {STATE_TABLE} WHERE {where}", [s.row()[:3] for s in batch.states]
            )
            values = ", ".join(p for _ in COLUMNS)
            self.executemany(
                f"INSERT INTO {STATE_TABLE} ({', '.join(COLUMNS)}) VALUES ({values})",
                [s.row() for s in batch.states],
            )

    def _delete(self, write: Write) -> None:
        """The rows ``write.delete`` names, directly or ``through`` their parent rows."""
        assert write.delete is not None
        keys = write.delete
        with self.staged(keys, write.through or write.table) as staged:
            match = " AND ".join(f"k.{quote(c)} = t.{quote(c)}" for c in keys.column_names)
            if write.through is None:
                self.execute(
                    f"DELETE FROM {quote(write.table)} AS t "
                    f"WHERE EXISTS (SELECT 1 FROM {staged} AS k WHERE {match})"
                )
            else:
                self.execute(
                    f"DELETE FROM {quote(write.table)} WHERE {quote(PARENT_ID)} IN "
                    f"(SELECT t.{quote(ROW_ID)} FROM {quote(write.through)} AS t "
                    f"JOIN {staged} AS k ON {match})"
                )

    def _create(self, table: str, columns: list[Change]) -> None:
        """A new table with the columns its first rows have (their types final, since
        a widening within one batch leaves only the widest type in the schema)."""
        final: dict[str, pa.DataType] = {}
        for change in columns:
            final[change.column] = change.type
        spelled = ", ".join(
            f"{quote(name)} {self.types[TYPE_NAMES[kind]]}" for name, kind in final.items()
        )
        self.execute(f"CREATE TABLE {quote(table)} ({spelled})")

    def _alter(self, change: Change) -> None:
        table = quote(change.table)
        if change.kind == "column":
            sql_type = self.types[TYPE_NAMES[change.type]]
            self.execute(f"ALTER TABLE {table} ADD COLUMN {quote(change.column)} {sql_type}")
        else:
            self.widen(table, quote(change.column), self.types[TYPE_NAMES[change.type]])

    def widen(self, table: str, column: str, sql_type: str) -> None:
        self.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {sql_type}")

    def _record(self, changes: list[Change]) -> None:
        if not changes:
            return
        [(last,)] = self.query(f"SELECT COALESCE(MAX(seq), 0) FROM {SCHEMA_TABLE}")
        rows = [
            (
                int(last) + n,
                c.table,
                c.column,
                c.kind,
                TYPE_NAMES.get(c.type, "null"),
                None if c.was is None else TYPE_NAMES[c.was],
            )
            for n, c in enumerate(changes, 1)
        ]
        p = self.placeholder
        now = f"CAST(CURRENT_TIMESTAMP AS {self.types['string']})"
        self.executemany(
            f"INSERT INTO {SCHEMA_TABLE} ({', '.join(_SCHEMA_COLUMNS)}) "
            f"VALUES ({', '.join(p for _ in rows[0])}, {now})",
            rows,
        )
