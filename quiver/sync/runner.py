"""One ``quiver sync`` run: every resource of every source, page by page, into batches
the destination commits with their state.

Run and resume. A source row in the state (resource ``""``) says whether the last run
finished. When it did not, this run resumes it: resources it finished are skipped,
the walk it was in continues after its last committed page, and children still
pending are fetched. Otherwise a new run starts, each walk asking from the cursor
the last one reached (minus the lookback).

A child resource gets a state row per parent record: the parent's walk writes them
as ``pending`` in the same batch as the parent's rows, so no parent record loaded is
ever without its children, whenever the run is killed.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console

from quiver.client import AsyncClient, RequestSpec, paginator_from_config
from quiver.errors import SyncError
from quiver.sync.columnar import (
    PARENT_ID,
    ROW_ID,
    last_of_each_key,
    parse,
    require_key,
    row_ids,
    shape,
)
from quiver.sync.config import Resource, Source, SyncConfig, Unmatched
from quiver.sync.destinations import redacted
from quiver.sync.destinations.base import Batch, Destination, Write
from quiver.sync.fetch import client_for
from quiver.sync.pages import walk
from quiver.sync.progress import Progress, summary
from quiver.sync.schema import Change, Schema, normal, wider
from quiver.sync.select import Selector
from quiver.sync.state import State
from quiver.sync.tokens import TokenFile

STAGING = "_quiver_new__"


@dataclass
class Tally:
    """What one resource did in this run, for the summary."""

    source: str
    resource: str
    rows: int = 0
    pages: int = 0
    seconds: float = 0.0
    tables: set[str] = field(default_factory=set)
    changes: list[Change] = field(default_factory=list)


class Connect(Protocol):
    """Makes a source's client (:func:`quiver.sync.fetch.client_for`), its rotated
    refresh tokens kept in ``tokens``."""

    def __call__(self, source: Source, tokens: TokenFile | None = None, /) -> AsyncClient: ...


class Runner:
    def __init__(
        self,
        config: SyncConfig,
        destination: Destination,
        progress: Progress,
        connect: Connect = client_for,
        tokens: TokenFile | None = None,
    ) -> None:
        self.config = config
        self.destination = destination
        self.progress = progress
        self.connect = connect
        self.tokens = tokens
        self.schema = Schema(destination.schema())
        self.tallies: list[Tally] = []

    async def run(self) -> list[Tally]:
        for number, source in enumerate(self.config.sources):
            client = self.connect(source, self.tokens)
            try:
                await self._source(number, source, client)
            finally:
                await client.aclose()
        return self.tallies

    async def _source(self, number: int, source: Source, client: AsyncClient) -> None:
        [run] = self.destination.states(source.name, "") or [State(source.name, "")]
        if run.status != "running":  # a new run: every resource is to load again
            begun = [run.advanced(status="running")]
            for resource in source.resources:
                begun += [s.advanced(status="pending") for s in self._own(source, resource)]
            self.destination.commit(Batch(states=begun))
        for index, resource in enumerate(source.resources):
            load = _Load(self, source, resource, client)
            [state] = self._own(source, resource) or [State(source.name, resource.name)]
            if state.status == "done":
                continue  # loaded by this run before it was stopped
            try:
                await load.run(state, fresh=state.status != "running")
            except Exception as exc:  # the fault boundary: sources, drivers, data
                raise failure(self.config, number, index, exc) from exc
            self.tallies.append(load.tally)
        self.destination.commit(Batch(states=[run.advanced(status="done")]))

    def _own(self, source: Source, resource: Resource) -> list[State]:
        """The resource's own state row (not its parents' rows), if it has one."""
        states = self.destination.states(source.name, resource.name)
        return [state for state in states if not state.parent]


class _Load:
    """One resource of one run: its walks, its batches."""

    def __init__(self, runner: Runner, source: Source, resource: Resource, client: AsyncClient):
        self.runner = runner
        self.source = source
        self.resource = resource
        self.client = client
        self.selector = Selector(resource.data_selector)
        self.tally = Tally(source.name, resource.name)
        self.children = [
            r for r in source.resources if r.parent and r.parent[1].resource == resource.name
        ]
        self.child_states = {
            child.name: {
                s.parent: s for s in runner.destination.states(source.name, child.name) if s.parent
            }
            for child in self.children
        }
        self.table = (STAGING if resource.write_mode == "replace" else "") + resource.table
        self.batch = Batch()
        self.parts: dict[str, list[pa.Table]] = {}
        self.batch_keys: pa.Table | None = None  # of the merged records in the batch
        self.rows = 0  # in ``parts``
        self.bytes = 0  # of ``parts``

    async def run(self, state: State, *, fresh: bool) -> None:
        began = time.monotonic()
        if fresh and self.resource.write_mode == "replace":
            self.batch.drops += [t for t in self.runner.schema.tables if self._mine(t, staged=True)]
            for table in self.batch.drops:
                self.runner.schema.tables.pop(table)
        self.resource_state = state.advanced(status="running")
        parent = self.resource.parent
        if parent is None:
            self.resource_state = await self._walk(self.resource_state, {}, fresh=fresh)
        else:
            walks = self.runner.destination.states(self.source.name, self.resource.name)
            for walk_state in walks:
                if walk_state.parent and walk_state.status != "done":
                    value = orjson.loads(walk_state.parent)
                    extra = {f"_{parent[1].resource}_{parent[1].field}": value}
                    await self._walk(walk_state, extra, fresh=walk_state.status == "pending")
        self._finish()
        self.tally.seconds = time.monotonic() - began

    async def _walk(self, state: State, parent: dict[str, Any], *, fresh: bool) -> State:
        resource = self.resource
        if fresh:
            state = state.advanced(status="running", start=self._start(state), pages=0, next=None)
        request = self._request(state, parent)
        paginator = paginator_from_config(resource.paginator)
        task = self.runner.progress.task(f"{self.source.name}.{resource.name}")
        pages = walk(
            self.client,
            paginator,
            request,
            self.selector,
            resume=None if fresh else state.next,
            concurrency=self.source.concurrency,
        )
        if not state.parent:
            self.resource_state = state
        async for response, position in pages:
            records = parse(response.content, self.selector)
            loaded = self._page(records, parent)
            base = self.resource_state if not state.parent else state
            state = base.advanced(
                next=position, pages=base.pages + 1, cursor=self._cursor(records, base.cursor)
            )
            if position is None:
                state = state.advanced(status="done")
            if state.parent:
                self.batch.states.append(state)
            else:
                self.resource_state = state
            self.tally.pages += 1
            self.tally.rows += loaded
            total = position.get("of") if position else None
            self.runner.progress.advance(task, loaded, total=total)
            # the resource's last page waits for _finish: a batch that says the resource
            # is done must hold its end too (a replace's swap), or a kill between the two
            # commits leaves it "done" and never swapped in
            last_of_resource = position is None and not state.parent
            if self._full() and not last_of_resource:
                self._commit()
        return state

    def _page(self, records: pa.StructArray, parent: dict[str, Any]) -> int:
        resource = self.resource
        key = resource.key
        if not len(records):
            return 0
        require_key(records, key)
        if key and resource.write_mode == "merge":
            records = last_of_each_key(records, key)
            keys = pa.table({name: pc.struct_field(records, name) for name in key})
            if self._in_batch(keys):
                self._commit()  # a record loaded twice in one batch: the later one wins
            self.batch_keys = keys if self.batch_keys is None else _stacked(self.batch_keys, keys)
        count = len(records)
        first_row = self.resource_state.rows
        self.resource_state = self.resource_state.advanced(rows=first_row + count)
        single = len(key) == 1
        parent_id = pc.struct_field(records, key[0]) if single else row_ids(first_row, count)
        extra = {name: pa.array([value] * count) for name, value in parent.items()}
        tables = shape(
            records, self.table, nested=resource.nested, parent_id=parent_id, extra=extra
        )
        if not single:
            tables[self.table] = tables[self.table].append_column(ROW_ID, parent_id)
        for table, rows in tables.items():
            if rows.num_columns:
                self._add(table, rows)
        self._pending_children(records)
        return count

    def _in_batch(self, keys: pa.Table) -> bool:
        """Whether a key of ``keys`` (one record each) is in the batch already."""
        if self.batch_keys is None:
            return False
        both = _stacked(self.batch_keys, keys)
        distinct = both.group_by(both.column_names, use_threads=False).aggregate([])
        return bool(distinct.num_rows < both.num_rows)

    def _add(self, table: str, rows: pa.Table) -> None:
        fitted, changes = self.runner.schema.fit(table, rows)
        self.batch.changes += changes
        self.tally.changes += [c for c in changes if c.kind != "table"]
        self.tally.tables.add(table.removeprefix(STAGING))
        self.parts.setdefault(table, []).append(fitted)
        self.rows += fitted.num_rows
        self.bytes += fitted.nbytes

    def _full(self) -> bool:
        """Big batches cost less per row (DuckDB compresses a row group once, not again
        at each commit that adds to it); the bytes bound keeps wide rows in memory."""
        config = self.runner.config
        return self.rows >= config.batch_rows or self.bytes >= config.batch_bytes

    def _pending_children(self, records: pa.StructArray) -> None:
        for child in self.children:
            assert child.parent is not None
            field = child.parent[1].field
            if records.type.get_field_index(field) < 0:
                continue  # (null in every record of the page)
            values = pc.unique(pc.struct_field(records, field)).to_pylist()
            known = self.child_states[child.name]
            for value in values:
                if value is None:
                    continue
                text = orjson.dumps(value).decode()
                state = known.get(text) or State(self.source.name, child.name, text)
                known[text] = state.advanced(status="pending")
                self.batch.states.append(known[text])

    def _commit(self, *, last: bool = False) -> None:
        batch, schema = self.batch, self.runner.schema
        if self.resource.write_mode == "merge":
            batch.writes += self._child_deletes()  # before the lists loaded again
        for table, parts in self.parts.items():
            kinds = schema.tables[table]
            cast = [_as_schema(part, kinds) for part in parts]
            rows = pa.concat_tables(cast, promote_options="default")
            batch.writes.append(Write(table, rows, self._deletes(table, rows)))
        if last and self.resource.write_mode == "replace":
            for table in sorted(t for t in schema.tables if self._mine(t, staged=True)):
                batch.swaps.append((table, table.removeprefix(STAGING)))
            gone = [
                t
                for t in schema.tables
                if self._mine(t, staged=False) and STAGING + t not in schema.tables
            ]
            batch.drops += gone
        batch.states.append(self.resource_state)
        batch.states = list({state.row()[:3]: state for state in batch.states}.values())
        self.runner.destination.commit(batch)
        for table in batch.drops if last else ():
            schema.tables.pop(table, None)
        for loaded, replaced in batch.swaps:
            schema.rename(loaded, replaced)
        self.batch, self.parts, self.batch_keys, self.rows, self.bytes = Batch(), {}, None, 0, 0

    def _deletes(self, table: str, rows: pa.Table) -> pa.Table | None:
        if self.resource.write_mode != "merge" or table != self.table:
            return None
        return rows.select(list(self.resource.key))

    def _child_deletes(self) -> list[Write]:
        """A merged record's list replaces the one loaded before, even when it is empty.

        Its items name it by its key when the key is one column, else by its row
        number: those are found through the parent rows the batch's keys match."""
        if self.batch_keys is None:
            return []
        keys, through = self.batch_keys, None
        if keys.num_columns == 1:
            keys = keys.rename_columns([PARENT_ID])
        else:
            through = self.table
        children = [
            t
            for t in self.runner.schema.tables
            if t.startswith(self.table + "__") and PARENT_ID in self.runner.schema.tables[t]
        ]
        return [Write(table, pa.table({}), keys, through) for table in children]

    def _finish(self) -> None:
        self.resource_state = self.resource_state.advanced(status="done", next=None)
        self._commit(last=True)

    def _mine(self, table: str, *, staged: bool) -> bool:
        name = (STAGING if staged else "") + self.resource.table
        return table == name or table.startswith(name + "__")

    def _request(self, state: State, parent: dict[str, Any]) -> RequestSpec:
        resource = self.resource
        params: dict[str, Any] = {}
        path = resource.path
        for name, value in resource.params.items():
            if isinstance(value, str | int | float | bool):
                params[name] = value
        if resource.parent is not None:
            for value in parent.values():
                path = path.replace("{" + resource.parent[0] + "}", str(value))
        incremental = resource.incremental
        if incremental and incremental.start_param and state.start is not None:
            params[incremental.start_param] = state.start
        return RequestSpec(resource.method, path, params, dict(resource.headers))

    def _start(self, state: State) -> Any:
        incremental = self.resource.incremental
        if incremental is None:
            return None
        if state.cursor is None:
            return incremental.initial_value
        return _back(state.cursor, incremental.lookback)

    def _cursor(self, records: pa.StructArray, cursor: Any) -> Any:
        incremental = self.resource.incremental
        if incremental is None or not len(records):
            return cursor
        values: pa.Array = records
        for key in Selector(incremental.cursor_path).keys:
            there = [f.name for f in values.type] if pa.types.is_struct(values.type) else []
            if key not in there:
                # else the cursor never moves: every run loads all from initial_value
                raise Unmatched(
                    "incremental.cursor_path",
                    f"incremental.cursor_path {incremental.cursor_path!r}: no record of a "
                    f"page has {key!r} (they have {', '.join(map(repr, there)) or 'no fields'})",
                )
            values = pc.struct_field(values, key)
        highest = _json_value(pc.max(values).as_py())
        if highest is None:
            return cursor
        if cursor is None:
            return highest
        return highest if _comparable(highest) > _comparable(cursor) else cursor


def failure(config: SyncConfig, source: int, resource: int, exc: Exception) -> SyncError:
    """What a resource's failure ends the run with: the source and resource named, the
    destination's password hidden, a key of the resource that names nothing placed in
    the sources file."""
    where = config.sources[source]
    named = where.resources[resource]
    why = redacted(config.destination, reason(exc))
    if isinstance(exc, Unmatched):
        why = str(config.issue(f"sources[{source}].resources[{resource}].{exc.key}", why))
    return SyncError(f"{where.name}.{named.name}: {why}")


def reason(exc: Exception) -> str:
    """The first line of an error's message: what a failed run prints of it."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def sync(config: SyncConfig, console: Console, connect: Connect = client_for) -> list[Tally]:
    """Run ``config`` into its destination, with progress bars and a summary;
    ``connect`` makes each source's client."""
    from quiver.sync.destinations import open_destination

    tokens = TokenFile.open(config)
    url = config.destination
    try:
        destination = open_destination(url)
    except Exception as exc:
        raise SyncError(f"destination {redacted(url)}: {redacted(url, reason(exc))}") from None
    try:
        with Progress(console) as progress:
            runner = Runner(config, destination, progress, connect, tokens)
            tallies = asyncio.run(runner.run())
    finally:
        destination.close()
    summary(tallies, console)
    return tallies


def _stacked(above: pa.Table, below: pa.Table) -> pa.Table:
    """Two tables of keys as one, a column whose type differs between them widened."""
    kinds = {
        name: wider(normal(above.column(name).type), normal(below.column(name).type))
        for name in above.column_names
    }
    return pa.concat_tables([_as_schema(above, kinds), _as_schema(below, kinds)])


def _as_schema(rows: pa.Table, kinds: dict[str, pa.DataType]) -> pa.Table:
    columns = [
        column if column.type == kinds[name] else column.cast(kinds[name])
        for name, column in zip(rows.column_names, rows.columns, strict=True)
    ]
    return pa.table(columns, names=rows.column_names)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _comparable(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def _back(cursor: Any, lookback: float) -> Any:
    """``cursor`` less the lookback: seconds for a timestamp, units for a number."""
    if not lookback:
        return cursor
    if isinstance(cursor, int):  # an id stays an integer: rounded down, it asks for more
        return math.floor(cursor - lookback)
    if isinstance(cursor, float):
        return cursor - lookback
    moment = _comparable(cursor)
    if isinstance(moment, datetime):
        return _json_value(moment - timedelta(seconds=lookback))
    return cursor
