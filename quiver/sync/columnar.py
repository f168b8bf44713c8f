"""A page of JSON into Arrow tables, by column: no record is ever a Python object.

The page is parsed by Arrow's JSON reader (C++): wrapped as ``{"r": <page>}`` with
its line breaks turned into spaces, it is one line of newline-delimited JSON (raw
line breaks cannot occur inside JSON strings, RFC 8259 section 7, so nothing else
changes). The selector then reaches the records, and :func:`shape` turns them into
tables the way dlt names them: nested objects flattened into ``parent__child``
columns (or kept as JSON text), lists into child tables ``<table>__<field>`` whose
rows carry ``_parent_id`` (the parent's key) and ``_idx`` (the position in the list).
A page Arrow cannot read by itself (a field that is a number in one record and text
in another) goes through orjson, the disagreeing fields as JSON text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from quiver.sync.select import Selector

Nested = Literal["flatten", "json"]
SEPARATOR = "__"
PARENT_ID = "_parent_id"
INDEX = "_idx"
ROW_ID = "_quiver_row"


def parse(content: bytes, selector: Selector) -> pa.StructArray:
    """The records of one page as a struct array (one field per top-level key)."""
    line = b'{"r":' + content.replace(b"\n", b" ").replace(b"\r", b" ") + b"}"
    options = pj.ReadOptions(block_size=len(line) + 1, use_threads=False)
    try:
        # the streaming reader over the one block: read_json starts a thread per call
        # (a clone and some eight context switches per page) for the same result
        reader = pj.open_json(pa.BufferReader(line), read_options=options)
        document = reader.read_all().column("r")
    except pa.ArrowInvalid:
        return _parse_mixed(content, selector)
    return _as_records(selector.arrow_records(document.combine_chunks()))


def _parse_mixed(content: bytes, selector: Selector) -> pa.StructArray:
    found = selector.records(orjson.loads(content), strict=True)
    records = [r for r in found if isinstance(r, dict)]
    kinds: dict[str, set[type]] = {}
    for record in records:
        for key, value in record.items():
            if value is not None:
                kinds.setdefault(key, set()).add(bool if isinstance(value, bool) else type(value))
    mixed = {key for key, seen in kinds.items() if len(seen - {int, float}) > 1 or _odd(seen)}
    for record in records:
        for key in mixed.intersection(record):
            if record[key] is not None:
                record[key] = orjson.dumps(record[key]).decode()
    return _as_records(pa.array(records) if records else pa.array([], pa.struct([])))


def _odd(seen: set[type]) -> bool:
    """Numbers with something else (text, a boolean): kept as JSON text."""
    return bool(seen & {int, float}) and bool(seen - {int, float})


def _as_records(array: pa.Array) -> pa.StructArray:
    if pa.types.is_null(array.type):
        return pa.array([], pa.struct([]))
    if not pa.types.is_struct(array.type):
        raise LookupError(f"the selected records are {array.type}, not objects")
    return array


def shape(
    records: pa.StructArray,
    table: str,
    *,
    nested: Nested,
    parent_id: pa.Array | None,
    extra: dict[str, pa.Array] | None = None,
) -> dict[str, pa.Table]:
    """``records`` as the rows of ``table`` and of its child tables.

    ``parent_id`` is the key each row gives its list items in the child tables (the
    primary key, or a row number): when None the records' lists stay JSON text.
    ``extra`` columns (a parent resource's key) are put first."""
    columns: dict[str, pa.Array] = dict(extra or {})
    lists: dict[str, pa.Array] = {}
    _columns(records, "", nested, columns, lists)
    tables = {table: _table(columns, len(records))}
    for name, values in lists.items():
        child = f"{table}{SEPARATOR}{name}"
        if parent_id is None:
            tables[table] = tables[table].append_column(name, _json_text(values))
        elif len(values.flatten()):  # empty lists: no rows, and no columns to guess
            tables.update(_child(values, child, nested, parent_id))
    return tables


def _columns(
    array: pa.StructArray,
    prefix: str,
    nested: Nested,
    columns: dict[str, pa.Array],
    lists: dict[str, pa.Array],
) -> None:
    for field, values in zip(array.type, array.flatten(), strict=True):
        name = prefix + field.name
        kind = field.type
        if pa.types.is_null(kind):
            continue  # no column until a value says what it is
        if pa.types.is_struct(kind):
            if nested == "json":
                columns[name] = _json_text(values)
            else:
                _columns(_with_parent_nulls(values), name + SEPARATOR, nested, columns, lists)
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            lists[name] = values
        else:
            columns[name] = values


def _with_parent_nulls(values: pa.StructArray) -> pa.StructArray:
    """A struct's fields are null where the struct itself is (``flatten`` ignores that)."""
    if values.null_count == 0:
        return values
    fields = [pc.if_else(values.is_valid(), f, pa.nulls(len(f), f.type)) for f in values.flatten()]
    return pa.StructArray.from_arrays(fields, fields=list(values.type))


def _child(
    values: pa.ListArray, table: str, nested: Nested, parent_id: pa.Array
) -> dict[str, pa.Table]:
    items = values.flatten()
    parents = pc.list_parent_indices(values)
    offsets = values.offsets.to_numpy()
    position = np.arange(len(items), dtype=np.int64) + offsets[0]
    index = pa.array(position - offsets[parents.to_numpy()])
    extra = {PARENT_ID: parent_id.take(parents), INDEX: index}
    if pa.types.is_struct(items.type):
        return shape(items, table, nested=nested, parent_id=None, extra=extra)
    if pa.types.is_list(items.type) or pa.types.is_large_list(items.type):
        items = _json_text(items)
    return {table: _table({**extra, "value": items}, len(items))}


def _table(columns: dict[str, pa.Array], rows: int) -> pa.Table:
    """The columns as a table; without any, a table of ``rows`` rows all the same
    (records with lists only: their row number or parent's key is added after)."""
    if columns:
        return pa.table(columns)
    return pa.table({"": pa.nulls(rows)}).drop_columns([""])


def _json_text(values: pa.Array) -> pa.Array:
    """Values as JSON text, one by one: the choice of ``nested: json`` costs per record."""
    return pa.array(
        [None if v is None else orjson.dumps(v, default=str).decode() for v in values.to_pylist()],
        pa.string(),
    )


def row_ids(start: int, count: int) -> pa.Array:
    return pa.array(np.arange(start, start + count, dtype=np.int64))


def require_key(records: pa.StructArray, key: Sequence[str]) -> None:
    """A page's records (if it has any) have the primary key's columns, or this raises."""
    for name in key:
        if len(records) and records.type.get_field_index(name) < 0:
            raise LookupError(f"a page has records without the primary key {name!r}")


def last_of_each_key(records: pa.StructArray, key: Sequence[str]) -> pa.StructArray:
    """The records with one per primary key, the last one seen: a page that repeats a
    record (pages shifting while they are read) must not load it twice."""
    if len(records) < 2:
        return records
    keys = pa.table({name: pc.struct_field(records, name) for name in key})
    keys = keys.append_column("__n", pa.array(np.arange(len(records), dtype=np.int64)))
    last = keys.group_by(list(key), use_threads=False).aggregate([("__n", "max")])["__n_max"]
    if len(last) == len(records):
        return records
    return records.take(pc.sort_indices(last))
