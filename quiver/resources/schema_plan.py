"""What a table needs to match its resource's declaration, read from the file and
never written: the plan :mod:`.migrate` applies or refuses.

The table is read with ``PRAGMA table_info`` and ``index_list`` (in PostgreSQL from
its catalog, :mod:`.postgres_schema`); the declaration
applied last (kept in :data:`RECORD`) tells the changes SQLite cannot see, a
``string`` field becoming an ``array`` (both TEXT).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from quiver.config.resources import TIMESTAMPS, Resource
from quiver.resources.storage import Connection, Dialect, Table, dialect_of, now, tables_of

#: the table keeping each resource's declaration as last applied
RECORD = "_quiver_resources"


def declaration(table: Table) -> str:
    """What of a resource shapes its table, as the JSON recorded once applied."""
    resource, parent = table.resource, table.parent
    shape: dict[str, Any] = {
        "key": {"name": table.key.name, "type": table.key.type},
        "types": table.types,
        "required": sorted(resource.required),
        "unique": sorted(resource.unique),
        "indexes": sorted(table.indexes()),
        "parent": None,
    }
    if resource.parent is not None and parent is not None:
        shape["parent"] = [resource.parent.field, parent.name, parent.key.type]
        shape["on_delete"] = resource.parent.on_delete
    return json.dumps(shape, sort_keys=True)


@dataclass(slots=True)
class Column:
    """A column as the table has it."""

    affinity: str
    notnull: bool


@dataclass(slots=True)
class Existing:
    """A table as the file has it."""

    columns: dict[str, Column]
    key: str
    autoincrement: bool
    unique: set[str]
    indexes: set[str]
    rows: int


@dataclass(slots=True)
class Loss:
    """A change that would lose values: where it is declared and what is lost."""

    where: str
    what: str
    forcible: bool = True


@dataclass(slots=True)
class Plan:
    """What one table needs to match its declaration."""

    table: Table
    existing: Existing | None
    where: str
    dialect: Dialect = "sqlite"
    rebuild: bool = False
    key_change: bool = False
    statements: list[str] = field(default_factory=list)
    losses: list[Loss] = field(default_factory=list)
    #: values for a column's NULLs in a rebuild (defaults of new or now required fields)
    fills: dict[str, Any] = field(default_factory=dict)
    #: converters of the values of columns changing type, in a rebuild
    converters: dict[str, Callable[[Any], Any]] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return self.existing is None or self.rebuild or bool(self.statements)


def _recorded(connection: Connection) -> dict[str, dict[str, Any]]:
    try:
        rows = connection.execute(f'SELECT name, declaration FROM "{RECORD}"').fetchall()
    except sqlite3.OperationalError:
        return {}
    return {name: json.loads(text) for name, text in rows}


def _existing(connection: Connection, name: str) -> Existing | None:
    if dialect_of(connection) == "postgresql":
        from quiver.resources.postgres_schema import read_table

        return read_table(connection, name)
    info = connection.execute(f'PRAGMA table_info("{name}")').fetchall()
    if not info:
        return None
    columns = {row[1]: Column(row[2].upper(), bool(row[3])) for row in info}
    key = next((row[1] for row in info if row[5]), "")
    sql = connection.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()[0]
    unique: set[str] = set()
    indexes: set[str] = set()
    for _, index, is_unique, origin, _ in connection.execute(f'PRAGMA index_list("{name}")'):
        if origin == "c":
            indexes.add(index)
        elif origin == "u" and is_unique:
            named = connection.execute(f'PRAGMA index_info("{index}")').fetchall()
            if len(named) == 1:
                unique.add(named[0][2])
    rows = connection.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
    return Existing(columns, key, "AUTOINCREMENT" in sql.upper(), unique, indexes, rows)


def plan_changes(connection: Connection, resources: Sequence[Resource]) -> list[Plan]:
    """What each table needs, parents first; reads only."""
    recorded = _recorded(connection)
    position = {resource.name: index for index, resource in enumerate(resources)}
    plans: list[Plan] = []
    rekeyed: set[str] = set()
    for table in tables_of(resources).values():
        where = f"resources[{position[table.name]}]"
        dialect = dialect_of(connection)
        plan = Plan(table, _existing(connection, table.name), where, dialect)
        if plan.existing is not None:
            _plan_table(connection, plan, recorded.get(table.name))
            if dialect == "postgresql" and plan.key_change:
                _key_not_migrated(plan)
            if table.parent is not None and table.parent.name in rekeyed:
                # its parent column follows the parents' new keys: nothing lost there
                plan.rebuild = True
                field = f"{where}.parent.field"
                plan.losses = [loss for loss in plan.losses if loss.where != field]
            if plan.key_change:
                rekeyed.add(table.name)
        plans.append(plan)
    return plans


def _key_not_migrated(plan: Plan) -> None:
    """PostgreSQL changes a table in place: a key of another kind is not one of the
    changes it makes (its children's columns would have to follow)."""
    plan.losses = [loss for loss in plan.losses if not loss.where.endswith(".primary_key")]
    plan.losses.append(
        Loss(
            f"{plan.where}.primary_key",
            f"the key of '{plan.table.name}' changes kind: not migrated in PostgreSQL; "
            "export the items, drop the table and load them back",
            forcible=False,
        )
    )


def _count(connection: Connection, sql: str) -> int:
    return int(connection.execute(sql).fetchone()[0])


def _plan_table(connection: Connection, plan: Plan, record: dict[str, Any] | None) -> None:
    table, existing = plan.table, plan.existing
    assert existing is not None
    old_types: dict[str, str] = record["types"] if record else {}
    old_key = _plan_key(plan, record, old_types)
    resource = table.resource
    if resource.parent is not None and record is not None:
        plan.rebuild = plan.rebuild or record.get("on_delete") != resource.parent.on_delete
    for column in table.columns:
        if column == table.key.name:
            continue  # (its changes are a key change)
        have = existing.columns.get(column)
        if have is None:
            _new_column(plan, column, _where(plan, column))
        else:
            _plan_column(connection, plan, column, have, old_types.get(column))
    for column in existing.columns:
        if column not in table.columns and not (plan.key_change and column == old_key):
            _removed_column(connection, plan, column)
    if not plan.rebuild:
        wanted = table.indexes()
        plan.statements += [sql for index, sql in wanted.items() if index not in existing.indexes]
        plan.statements += [
            f'DROP INDEX "{index}"' for index in sorted(existing.indexes - set(wanted))
        ]


def _plan_key(plan: Plan, record: dict[str, Any] | None, old_types: dict[str, str]) -> str:
    """Notes a key of another kind (or name, or type); the old key's name."""
    table, existing = plan.table, plan.existing
    assert existing is not None
    # a table made before the record was kept has the integer key the store assigns
    name, kind = existing.key, "auto" if existing.autoincrement else "given"
    if record is not None:
        name, kind = record["key"]["name"], record["key"]["type"]
    if (name, kind) == (table.key.name, table.key.type):  # the same kind, another type?
        was = old_types.get(name, table.types[table.key.name])
        affinity = existing.columns[existing.key].affinity
        if was != table.types[table.key.name] or affinity != table.key.affinity:
            kind = f"{kind} {was}"
    if (name, kind) != (table.key.name, table.key.type):
        plan.rebuild = plan.key_change = True
        if existing.rows:
            plan.losses.append(
                Loss(
                    f"{plan.where}.primary_key",
                    f"the key changes from {kind} '{name}' to {table.key.type} "
                    f"'{table.key.name}': the {existing.rows} items of '{table.name}' would "
                    "get new keys (or be dropped without one); their children follow them, "
                    "links kept elsewhere would break",
                )
            )
    return name


def _plan_column(
    connection: Connection,
    plan: Plan,
    column: str,
    have: Column,
    recorded_type: str | None,
) -> None:
    """A column the table has: its type, NOT NULL and UNIQUE against the declaration."""
    table, where, name = plan.table, _where(plan, column), plan.table.name
    resource, rows = table.resource, plan.existing.rows if plan.existing else 0
    if recorded_type is not None:
        changed = recorded_type != table.types[column]
    else:
        changed = have.affinity != table.affinity(column)
    values = _count(connection, f'SELECT COUNT("{column}") FROM "{name}"')
    if changed:
        plan.rebuild = True
        plan.converters[column] = _converter(table.types[column])
        if values:
            was = recorded_type or have.affinity
            plan.losses.append(
                Loss(
                    where,
                    f"changes type from {was} to {table.types[column]}: {values} items "
                    "have a value that would be converted or lost",
                )
            )
    required = column in resource.required or column in TIMESTAMPS
    if required and not have.notnull:
        plan.rebuild = True
        default = resource.fields.get(column, {}).get("default")
        if default is not None:
            plan.fills[column] = table.to_sql(column, default)
        elif rows - values:
            plan.losses.append(
                Loss(
                    where,
                    f"becomes required: {rows - values} items have no value and would be "
                    "dropped (a default fills them instead)",
                )
            )
    elif not required and have.notnull and column in resource.fields:
        plan.rebuild = True
    existing_unique = plan.existing is not None and column in plan.existing.unique
    unique = column in resource.unique
    if unique != existing_unique:
        plan.rebuild = True
    if unique and not existing_unique:
        shared = _count(
            connection,
            f'SELECT COUNT(*) FROM (SELECT 1 FROM "{name}" WHERE "{column}" IS NOT NULL '
            f'GROUP BY "{column}" HAVING COUNT(*) > 1) AS shared',
        )
        if shared:
            plan.losses.append(
                Loss(
                    where,
                    f"becomes unique: {shared} values are shared by several items; all "
                    "but the first item of each would be dropped",
                )
            )


def _removed_column(connection: Connection, plan: Plan, column: str) -> None:
    """A column no longer declared: dropped by a rebuild, refused while it has values."""
    plan.rebuild = True
    name = plan.table.name
    values = _count(connection, f'SELECT COUNT("{column}") FROM "{name}"')
    if values:
        plan.losses.append(
            Loss(
                _where(plan, column),
                f"is no longer declared: {values} items of '{name}' have a value "
                "that would be lost",
            )
        )


def _where(plan: Plan, column: str) -> str:
    resource = plan.table.resource
    if column in TIMESTAMPS:
        return f"{plan.where}.timestamps"
    if resource.parent is not None and column == resource.parent.field:
        return f"{plan.where}.parent.field"
    return f"{plan.where}.fields.{column}"


def _new_column(plan: Plan, column: str, where: str) -> None:
    """A column the table lacks: added in place when SQLite can, else by a rebuild."""
    table, existing = plan.table, plan.existing
    assert existing is not None
    resource, rows = table.resource, existing.rows
    if column in TIMESTAMPS:
        # (both timestamps of an item say one time: the migration's)
        stamp = next((plan.fills[other] for other in TIMESTAMPS if other in plan.fills), now())
        plan.fills[column] = stamp
        plan.statements.append(
            f'ALTER TABLE "{table.name}" ADD COLUMN {table.column_sql(column, plan.dialect)} '
            f"DEFAULT {_literal(stamp)}"
        )
        return
    if column not in resource.fields:  # a parent column: every item needs a parent
        plan.rebuild = True
        if rows:
            plan.losses.append(
                Loss(where, f"is new: the {rows} items have no parent", forcible=False)
            )
        return
    default = resource.fields[column].get("default")
    required, unique = column in resource.required, column in resource.unique
    if default is not None:
        plan.fills[column] = table.to_sql(column, default)
    if required and default is None and rows:
        plan.losses.append(
            Loss(
                where,
                f"is new and required: give it a default to fill the {rows} items "
                f"of '{table.name}'",
                forcible=False,
            )
        )
    if unique and default is not None and rows > 1:
        plan.losses.append(
            Loss(
                where,
                f"is new and unique: its default cannot fill the {rows} items of "
                f"'{table.name}' (remove the default)",
                forcible=False,
            )
        )
    if unique or (required and default is None):
        plan.rebuild = True  # ADD COLUMN takes neither UNIQUE nor NOT NULL without default
        return
    sql = f'ALTER TABLE "{table.name}" ADD COLUMN {table.column_sql(column, plan.dialect)}'
    if default is not None:
        sql += f" DEFAULT {_literal(table.to_sql(column, default))}"
    plan.statements.append(sql)


def _literal(value: Any) -> str:
    """A constant for ADD COLUMN ... DEFAULT (which takes no parameters)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _converter(kind: str) -> Callable[[Any], Any]:
    """Turns a stored value into one of type ``kind``, None when it cannot be."""

    def convert(value: Any) -> Any:
        try:
            if kind == "string":
                return str(value)
            if kind in ("integer", "number"):
                number = float(value)
                if kind == "number":
                    return int(number) if number.is_integer() else number
                return int(number) if number.is_integer() else None
            if kind == "boolean":
                return {"1": 1, "0": 0, "true": 1, "false": 0}.get(str(value).lower())
            parsed = json.loads(value) if isinstance(value, str) else None
        except (TypeError, ValueError, OverflowError):
            return None
        wanted = list if kind == "array" else dict
        return value if isinstance(parsed, wanted) else None

    return convert
