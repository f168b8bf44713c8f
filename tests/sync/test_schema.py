"""Fitting pages to a table's columns: the same types page after page, then a change."""

from __future__ import annotations

import pyarrow as pa

from quiver.sync.schema import Schema


def test_pages_of_the_same_types_fit_as_the_first_did_until_the_table_changes() -> None:
    schema = Schema({})
    whole = pa.table({"id": pa.array([1, 2], pa.int32()), "name": ["a", "b"]})
    fitted, changes = schema.fit("t", whole)
    assert [c.kind for c in changes] == ["table", "column", "column"]
    assert fitted.schema == pa.schema({"id": pa.int64(), "name": pa.string()})
    again, changes = schema.fit("t", whole)  # the same types: cast the same way
    assert changes == [] and again.equals(fitted)

    _, changes = schema.fit("t", pa.table({"id": [1.5], "name": ["c"]}))
    assert [(c.kind, c.type) for c in changes] == [("widen", pa.float64())]
    widened, changes = schema.fit("t", whole)  # as before, but the column is wider now
    assert changes == []
    assert widened.column("id").type == pa.float64()
    assert widened.column("id").to_pylist() == [1.0, 2.0]

    schema.tables.pop("t")  # dropped (a replace starts it again)
    _, changes = schema.fit("t", whole)
    assert [c.kind for c in changes] == ["table", "column", "column"]
