"""Schema changes in PostgreSQL: a table read from the catalog as
:mod:`.schema_plan` reads one from SQLite, and a plan applied in place.

PostgreSQL alters a table where SQLite rebuilds it: a new column is added, a column
no longer declared dropped, a column of another type converted value by value (by
the converters the plan has, the values that cannot be converted left NULL, as a
SQLite rebuild leaves them), NOT NULL and UNIQUE set or dropped; forced, the rows
that still do not fit are deleted, as a rebuild drops them.  Every statement runs
in the migration's transaction: all of it applies, or none.
"""

from __future__ import annotations

import logging

from quiver.config.resources import TIMESTAMPS
from quiver.resources.schema_plan import Column, Existing, Plan
from quiver.resources.storage import Connection

log = logging.getLogger("quiver.resources")

#: PostgreSQL's types as the SQLite affinities the plan compares with
_AFFINITIES = {
    "text": "TEXT",
    "numeric": "NUMERIC",
    "bigint": "INTEGER",
    "integer": "INTEGER",
    "smallint": "INTEGER",
    "jsonb": "TEXT",
}
_COLUMNS = (
    "SELECT a.attname, format_type(a.atttypid, NULL), a.attnotnull, a.attidentity <> '' "
    "FROM pg_attribute a WHERE a.attrelid = to_regclass(?) AND a.attnum > 0 "
    "AND NOT a.attisdropped ORDER BY a.attnum"
)
_PRIMARY = (
    "SELECT a.attname FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid "
    "AND a.attnum = x.indkey[0] WHERE x.indrelid = to_regclass(?) AND x.indisprimary"
)
#: the table's constraints of one kind on one column: name, column
_CONSTRAINTS = (
    "SELECT c.conname, a.attname FROM pg_constraint c JOIN pg_attribute a "
    "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
    "WHERE c.conrelid = to_regclass(?) AND c.contype = ? AND cardinality(c.conkey) = 1"
)
_INDEXES = (
    "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
    "WHERE x.indrelid = to_regclass(?) AND NOT x.indisunique AND NOT x.indisprimary"
)


def create_schema(connection: Connection) -> None:
    """The schema the search_path names first, made when it is missing (tables are
    created in it)."""
    if connection.execute("SELECT current_schema()").fetchone()[0] is not None:
        return
    path = connection.execute("SELECT current_setting('search_path')").fetchone()[0]
    first = str(path).split(",")[0].strip().strip('"')
    if first and first != "$user":
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{first}"')


def read_table(connection: Connection, name: str) -> Existing | None:
    """The table ``name`` in the schema of the search_path, None when there is none."""
    quoted = f'"{name}"'
    info = connection.execute(_COLUMNS, (quoted,)).fetchall()
    if not info:
        return None
    columns = {
        column: Column(_AFFINITIES.get(kind, kind.upper()), bool(notnull))
        for column, kind, notnull, _ in info
    }
    identity = {column for column, _, _, is_identity in info if is_identity}
    primary = connection.execute(_PRIMARY, (quoted,)).fetchone()
    key = primary[0] if primary else ""
    unique = {column for _, column in _constraints(connection, name, "u")}
    indexes = {row[0] for row in connection.execute(_INDEXES, (quoted,))}
    rows = connection.execute(f"SELECT COUNT(*) FROM {quoted}").fetchone()[0]
    return Existing(columns, key, key in identity, unique, indexes, int(rows))


def _constraints(connection: Connection, name: str, kind: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in connection.execute(_CONSTRAINTS, (f'"{name}"', kind))]


def alter(connection: Connection, plan: Plan, *, forced: bool) -> None:
    """Applies ``plan`` (its refusals already checked) to its table, in place."""
    table, existing = plan.table, plan.existing
    assert existing is not None
    name, key = table.name, table.key.name
    resource = table.resource
    quoted = f'"{name}"'
    unique = set(existing.unique)
    notnull = {column for column, have in existing.columns.items() if have.notnull}
    parent_field = resource.parent.field if resource.parent is not None else None
    for column in existing.columns:
        if column not in table.columns:
            connection.execute(f'ALTER TABLE {quoted} DROP COLUMN "{column}"')
    for column in table.columns:
        if column == key:
            continue
        if column not in existing.columns or column in plan.converters:
            _add_column(connection, plan, column)
            unique.discard(column)
            notnull.discard(column)
        if column in plan.fills:
            connection.execute(
                f'UPDATE {quoted} SET "{column}" = ? WHERE "{column}" IS NULL',
                (plan.fills[column],),
            )
        required = column in resource.required or column in TIMESTAMPS or column == parent_field
        if required and column not in notnull:
            _set_not_null(connection, plan, column, forced=forced)
        elif not required and column in notnull:
            connection.execute(f'ALTER TABLE {quoted} ALTER COLUMN "{column}" DROP NOT NULL')
        wanted = column in resource.unique
        if wanted and column not in unique:
            _add_unique(connection, plan, column, forced=forced)
        elif not wanted and column in unique:
            for constraint, on in _constraints(connection, name, "u"):
                if on == column:
                    connection.execute(f'ALTER TABLE {quoted} DROP CONSTRAINT "{constraint}"')
    if parent_field is not None and parent_field in existing.columns:
        # (the declared ON DELETE may have changed: the reference is made again)
        for constraint, on in _constraints(connection, name, "f"):
            if on == parent_field:
                connection.execute(f'ALTER TABLE {quoted} DROP CONSTRAINT "{constraint}"')
        connection.execute(
            f'ALTER TABLE {quoted} ADD FOREIGN KEY ("{parent_field}") {table.reference()}'
        )
    wanted_indexes = table.indexes()
    for index in sorted(existing.indexes - set(wanted_indexes)):
        connection.execute(f'DROP INDEX IF EXISTS "{index}"')
    for sql in wanted_indexes.values():
        connection.execute(sql)


def _add_column(connection: Connection, plan: Plan, column: str) -> None:
    """A column added without its constraints (set after it is filled); a column
    changing type is added anew, its values converted into it."""
    table = plan.table
    quoted, key = f'"{table.name}"', table.key.name
    # (NOT NULL and UNIQUE set once filled; a parent column keeps its REFERENCES)
    declared = table.column_sql(column, "postgresql")
    definition = declared.removesuffix(" UNIQUE").replace(" NOT NULL", "", 1)
    convert = plan.converters.get(column)
    if convert is None:
        connection.execute(f"ALTER TABLE {quoted} ADD COLUMN {definition}")
        return
    temporary = f"_quiver_new_{column}"
    definition = definition.replace(f'"{column}"', f'"{temporary}"')
    connection.execute(f"ALTER TABLE {quoted} ADD COLUMN {definition}")
    rows = connection.execute(f'SELECT "{key}", "{column}" FROM {quoted}').fetchall()
    lost = 0
    for item_key, value in rows:
        converted = None if value is None else convert(value)
        lost += value is not None and converted is None
        connection.execute(
            f'UPDATE {quoted} SET "{temporary}" = ? WHERE "{key}" = ?', (converted, item_key)
        )
    connection.execute(f'ALTER TABLE {quoted} DROP COLUMN "{column}"')
    connection.execute(f'ALTER TABLE {quoted} RENAME COLUMN "{temporary}" TO "{column}"')
    if lost:
        log.warning(
            "resources: %s.%s: %d values that did not convert were lost", table.name, column, lost
        )


def _set_not_null(connection: Connection, plan: Plan, column: str, *, forced: bool) -> None:
    quoted = f'"{plan.table.name}"'
    if forced:  # (refused unless forced: the items without a value go)
        dropped = connection.execute(f'DELETE FROM {quoted} WHERE "{column}" IS NULL').rowcount
        if dropped:
            log.warning("resources: %s: %d items without %s were dropped", quoted, dropped, column)
    connection.execute(f'ALTER TABLE {quoted} ALTER COLUMN "{column}" SET NOT NULL')


def _add_unique(connection: Connection, plan: Plan, column: str, *, forced: bool) -> None:
    quoted, key = f'"{plan.table.name}"', plan.table.key.name
    if forced:  # (refused unless forced: all but the first item of a value go)
        connection.execute(
            f"DELETE FROM {quoted} AS later USING {quoted} AS first WHERE "
            f'later."{column}" = first."{column}" AND later."{key}" > first."{key}"'
        )
    connection.execute(f'ALTER TABLE {quoted} ADD UNIQUE ("{column}")')
