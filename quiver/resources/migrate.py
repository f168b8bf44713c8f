"""Schema changes applied when the store opens: each table brought in line with what
its resource declares.

Each table is compared with its declaration (``PRAGMA table_info`` and
``index_list``) and with the declaration applied last, kept in
``_quiver_resources`` (name, declaration as JSON, time applied): a change SQLite
cannot see, a string field becoming an array (both TEXT), is seen there.

Changes that keep every value are applied, all in one transaction: a new resource
(its table), a new field (``ALTER TABLE ADD COLUMN``, existing items taking its
default), timestamps (filled with the time of the migration), indexes added or
dropped, a constraint relaxed.  Changes that would lose values are refused, naming
the key at fault, unless ``resources_migrate: force``: a field removed or changing
type while items have a value, a field becoming unique while values clash or
required while items have none, a key of another kind.  Forced, the table is
rebuilt as https://www.sqlite.org/lang_altertable.html#otheralter (section 7)
describes: a new table, the kept columns copied (converted when they can be), the
old table dropped, the new one renamed; rows that still do not fit are dropped.
A table no resource declares any more is left as it is.

Workers starting together migrate once: the changes run under ``BEGIN IMMEDIATE``
and the recorded declarations are read again inside it, so the second worker
finds the work done.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from quiver.config.resources import TIMESTAMPS, MigrateMode, Resource
from quiver.errors import ConfigError, ConfigIssue
from quiver.resources.storage import Table, now, tables_of

log = logging.getLogger("quiver.resources")

RECORD = "_quiver_resources"
_RECORD_SQL = (
    f'CREATE TABLE IF NOT EXISTS "{RECORD}" (name TEXT PRIMARY KEY, '
    "declaration TEXT NOT NULL, applied_at TEXT NOT NULL)"
)
_FORCE = "set resources_migrate: force to apply it anyway"


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


def migrate(
    connection: sqlite3.Connection,
    resources: Sequence[Resource],
    mode: MigrateMode,
    source: str | None = None,
) -> None:
    """Brings every resource's table in line with its declaration; ConfigError lists
    the changes refused, each named by its key in the config."""
    tables = tables_of(resources)
    declared = {name: declaration(table) for name, table in tables.items()}
    if _applied(connection, declared):
        return  # the usual start: nothing changed, nothing locked
    # foreign keys are checked once at the end: a rebuilt parent is briefly missing
    connection.execute("PRAGMA foreign_keys = OFF")
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(_RECORD_SQL)
        if not _applied(connection, declared):  # another worker may have just done it
            plans = plan_changes(connection, resources)
            refuse(plans, mode, source)
            _apply(connection, plans, forced=mode == "force")
            stamp = now()
            connection.executemany(
                f'INSERT OR REPLACE INTO "{RECORD}" VALUES (?, ?, ?)',
                [(name, text, stamp) for name, text in declared.items()],
            )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def refuse(plans: list[Plan], mode: MigrateMode, source: str | None) -> None:
    """ConfigError naming every change that would lose values and is not allowed."""
    issues = [
        ConfigIssue(loss.where, loss.what + (f"; {_FORCE}" if loss.forcible else ""), source)
        for plan in plans
        for loss in plan.losses
        if mode != "force" or not loss.forcible
    ]
    if issues:
        raise ConfigError(issues)


def pending_refusals(path: str, resources: Sequence[Resource], mode: MigrateMode) -> list[str]:
    """What opening ``path`` would refuse, read without writing (for ``quiver check``)."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return []  # no file yet: every table will be new
    try:
        refuse(plan_changes(connection, resources), mode, path)
    except ConfigError as exc:
        return [str(issue) for issue in exc.issues]
    finally:
        connection.close()
    return []


def _applied(connection: sqlite3.Connection, declared: dict[str, str]) -> bool:
    try:
        rows = connection.execute(f'SELECT name, declaration FROM "{RECORD}"').fetchall()
    except sqlite3.OperationalError:
        return False  # a file without the record: tables made before it, or none
    recorded = dict(rows)
    return all(recorded.get(name) == text for name, text in declared.items())


def _recorded(connection: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    try:
        rows = connection.execute(f'SELECT name, declaration FROM "{RECORD}"').fetchall()
    except sqlite3.OperationalError:
        return {}
    return {name: json.loads(text) for name, text in rows}


def _existing(connection: sqlite3.Connection, name: str) -> Existing | None:
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


def plan_changes(connection: sqlite3.Connection, resources: Sequence[Resource]) -> list[Plan]:
    """What each table needs, parents first; reads only."""
    recorded = _recorded(connection)
    position = {resource.name: index for index, resource in enumerate(resources)}
    plans: list[Plan] = []
    rekeyed: set[str] = set()
    for table in tables_of(resources).values():
        where = f"resources[{position[table.name]}]"
        plan = Plan(table, _existing(connection, table.name), where)
        if plan.existing is not None:
            _plan_table(connection, plan, recorded.get(table.name))
            if table.parent is not None and table.parent.name in rekeyed:
                # its parent column follows the parents' new keys: nothing lost there
                plan.rebuild = True
                field = f"{where}.parent.field"
                plan.losses = [loss for loss in plan.losses if loss.where != field]
            if plan.key_change:
                rekeyed.add(table.name)
        plans.append(plan)
    return plans


def _count(connection: sqlite3.Connection, sql: str) -> int:
    return int(connection.execute(sql).fetchone()[0])


def _plan_table(connection: sqlite3.Connection, plan: Plan, record: dict[str, Any] | None) -> None:
    table, existing = plan.table, plan.existing
    assert existing is not None
    resource, name = table.resource, table.name
    old_types: dict[str, str] = record["types"] if record else {}
    old_key = (existing.key, "auto" if existing.autoincrement else "given")
    if record is not None:
        old_key = (record["key"]["name"], record["key"]["type"])
    if old_key == (table.key.name, table.key.type):  # the same kind, perhaps another type
        was = old_types.get(old_key[0], table.types[table.key.name])
        affinity = existing.columns[existing.key].affinity
        if was != table.types[table.key.name] or affinity != table.key.affinity:
            old_key = (old_key[0], f"{old_key[1]} {was if was else affinity.lower()}")
    if old_key != (table.key.name, table.key.type):
        plan.rebuild = plan.key_change = True
        if existing.rows:
            plan.losses.append(
                Loss(
                    f"{plan.where}.primary_key",
                    f"the key changes from {old_key[1]} '{old_key[0]}' to {table.key.type} "
                    f"'{table.key.name}': the {existing.rows} items of '{name}' would get "
                    "new keys (or be dropped without one); their children follow them, "
                    "links kept elsewhere would break",
                )
            )
    if resource.parent is not None and record is not None:
        plan.rebuild = plan.rebuild or record.get("on_delete") != resource.parent.on_delete
    for column in table.columns:
        if column == table.key.name:
            continue  # (its changes are a key change, above)
        where = _where(plan, column)
        have = existing.columns.get(column)
        if have is None:
            _new_column(plan, column, where)
            continue
        recorded_type = old_types.get(column)
        if recorded_type is not None:
            changed = recorded_type != table.types[column]
        else:
            changed = have.affinity != table.affinity(column)
        if changed:
            plan.rebuild = True
            plan.converters[column] = _converter(table.types[column])
            values = _count(connection, f'SELECT COUNT("{column}") FROM "{name}"')
            if values:
                plan.losses.append(
                    Loss(
                        where,
                        f"changes type from {recorded_type or have.affinity} to "
                        f"{table.types[column]}: "
                        f"{values} items have a value that would be converted or lost",
                    )
                )
        required = column in resource.required or column in TIMESTAMPS
        if required and not have.notnull:
            plan.rebuild = True
            missing = existing.rows - _count(connection, f'SELECT COUNT("{column}") FROM "{name}"')
            default = resource.fields.get(column, {}).get("default")
            if default is not None:
                plan.fills[column] = table.to_sql(column, default)
            elif missing:
                plan.losses.append(
                    Loss(
                        where,
                        f"becomes required: {missing} items have no value and would be "
                        "dropped (a default fills them instead)",
                    )
                )
        elif not required and have.notnull and column in resource.fields:
            plan.rebuild = True
        unique = column in resource.unique
        if unique != (column in existing.unique):
            plan.rebuild = True
        if unique and column not in existing.unique:
            shared = _count(
                connection,
                f'SELECT COUNT(*) FROM (SELECT 1 FROM "{name}" WHERE "{column}" IS NOT NULL '
                f'GROUP BY "{column}" HAVING COUNT(*) > 1)',
            )
            if shared:
                plan.losses.append(
                    Loss(
                        where,
                        f"becomes unique: {shared} values are shared by several items; all "
                        "but the first item of each would be dropped",
                    )
                )
    for column in existing.columns:
        if column in table.columns or (plan.key_change and column == old_key[0]):
            continue
        plan.rebuild = True
        values = _count(connection, f'SELECT COUNT("{column}") FROM "{name}"')
        if values:
            plan.losses.append(
                Loss(
                    _where(plan, column),
                    f"is no longer declared: {values} items of '{name}' have a value "
                    "that would be lost",
                )
            )
    if not plan.rebuild:
        wanted = table.indexes()
        plan.statements += [sql for index, sql in wanted.items() if index not in existing.indexes]
        plan.statements += [
            f'DROP INDEX "{index}"' for index in sorted(existing.indexes - set(wanted))
        ]


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
        stamp = now()
        plan.fills[column] = stamp
        plan.statements.append(
            f'ALTER TABLE "{table.name}" ADD COLUMN "{column}" TEXT NOT NULL '
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
    sql = f'ALTER TABLE "{table.name}" ADD COLUMN {table.column_sql(column)}'
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


def _apply(connection: sqlite3.Connection, plans: list[Plan], *, forced: bool) -> None:
    rekeyed: dict[str, dict[Any, Any]] = {}
    for plan in plans:
        table = plan.table
        if plan.existing is None:
            connection.execute(table.create_sql())
            for sql in table.indexes().values():
                connection.execute(sql)
        elif plan.rebuild:
            _rebuild(connection, plan, rekeyed, forced=forced)
        else:
            for sql in plan.statements:
                connection.execute(sql)
    # only the declared tables: one no resource declares any more is left alone
    broken = [
        row
        for plan in plans
        if plan.table.parent is not None
        for row in connection.execute(f'PRAGMA foreign_key_check("{plan.table.name}")')
    ]
    if broken and not forced:
        raise ConfigError([ConfigIssue(broken[0][0], "the migration would break links to parents")])
    for child, rowid, _, _ in broken:
        connection.execute(f'DELETE FROM "{child}" WHERE rowid = ?', (rowid,))
    if broken:
        log.warning("resources: %d items whose parent is gone were dropped", len(broken))


def _rebuild(
    connection: sqlite3.Connection,
    plan: Plan,
    rekeyed: dict[str, dict[Any, Any]],
    *,
    forced: bool,
) -> None:
    """The table made anew and its rows copied over (lang_altertable.html section 7)."""
    table, existing = plan.table, plan.existing
    assert existing is not None
    name, key = table.name, table.key
    temporary = f"_quiver_new_{name}"
    connection.execute(f'DROP TABLE IF EXISTS "{temporary}"')
    connection.execute(table.create_sql(temporary))
    old_columns = list(existing.columns)
    listed = ", ".join(f'"{column}"' for column in old_columns)
    names = ", ".join(f'"{column}"' for column in table.columns)
    marks = ", ".join("?" * len(table.columns))
    verb = "INSERT OR IGNORE" if forced else "INSERT"
    insert = f'{verb} INTO "{temporary}" ({names}) VALUES ({marks})'
    parent = table.resource.parent
    parent_keys = rekeyed.get(parent.resource) if parent is not None else None
    new_keys: dict[Any, Any] = {}
    dropped = 0
    for row in connection.execute(f'SELECT {listed} FROM "{name}"').fetchall():
        old = dict(zip(old_columns, row, strict=True))
        values = {column: _value(plan, column, old.get(column)) for column in table.columns}
        if parent is not None and parent_keys is not None:
            values[parent.field] = parent_keys.get(old.get(parent.field))
        if plan.key_change:
            values[key.name] = _new_key(plan, old, values)
        cursor = connection.execute(insert, tuple(values.values()))
        if cursor.rowcount == 0:
            dropped += 1
        elif plan.key_change:
            made = values[key.name]
            new_keys[old[existing.key]] = cursor.lastrowid if made is None else made
    if plan.key_change:
        rekeyed[name] = new_keys
    connection.execute(f'DROP TABLE "{name}"')
    connection.execute(f'ALTER TABLE "{temporary}" RENAME TO "{name}"')
    for sql in table.indexes().values():
        connection.execute(sql)
    if dropped:
        log.warning("resources: %s: %d items that did not fit were dropped", name, dropped)


def _value(plan: Plan, column: str, value: Any) -> Any:
    if value is not None and column in plan.converters:
        value = plan.converters[column](value)
    if value is None:
        value = plan.fills.get(column)
    return value


def _new_key(plan: Plan, old: dict[str, Any], values: dict[str, Any]) -> Any:
    """An item's key under a key of another kind: a new UUID, the old integer when
    it is one (else SQLite assigns one), or the field that is now the key."""
    key = plan.table.key
    if key.type == "uuid":
        return key.new()
    if key.type == "auto":
        value = old.get(key.name)
        return value if isinstance(value, int) else None
    return values.get(key.name)
