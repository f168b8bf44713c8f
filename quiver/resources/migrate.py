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

In PostgreSQL (:mod:`.postgres_schema`) the table is read from its catalog and
changed in place instead of rebuilt: ``ADD COLUMN``, ``DROP COLUMN``, a column of
another type converted value by value, constraints added or dropped; refused and
forced alike.  A key of another kind is not migrated there (export, drop the table,
load).

Workers starting together migrate once: the changes run under ``BEGIN IMMEDIATE``
(in PostgreSQL under ``pg_advisory_xact_lock``) and the recorded declarations are
read again inside it, so the second worker finds the work done.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from quiver.config.resources import MigrateMode, Resource
from quiver.errors import ConfigError, ConfigIssue
from quiver.resources.schema_plan import RECORD, Plan, declaration, plan_changes
from quiver.resources.storage import Connection, dialect_of, is_postgres, now, tables_of

log = logging.getLogger("quiver.resources")

_RECORD_SQL = (
    f'CREATE TABLE IF NOT EXISTS "{RECORD}" (name TEXT PRIMARY KEY, '
    "declaration TEXT NOT NULL, applied_at TEXT NOT NULL)"
)
_RECORD_WRITE = (
    f'INSERT INTO "{RECORD}" VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET '
    "declaration = excluded.declaration, applied_at = excluded.applied_at"
)
_FORCE = "set resources_migrate: force to apply it anyway"
#: the PostgreSQL advisory lock migrations hold, one worker at a time
MIGRATION_LOCK = 0x5175697665725253  # "QuiverRS"


def migrate(
    connection: Connection,
    resources: Sequence[Resource],
    mode: MigrateMode,
    source: str | None = None,
) -> None:
    """Brings every resource's table in line with its declaration; ConfigError lists
    the changes refused, each named by its key in the config."""
    # a db.json's tables (the json-server dialect) are made when it is seeded, as its
    # items were, and kept so: they are not declared to change
    resources = [resource for resource in resources if resource.dialect == "quiver"]
    if not resources:
        return
    tables = tables_of(resources)
    declared = {name: declaration(table) for name, table in tables.items()}
    if _applied(connection, declared):
        return  # the usual start: nothing changed, nothing locked
    postgres = dialect_of(connection) == "postgresql"
    if not postgres:
        # foreign keys are checked once at the end: a rebuilt parent is briefly missing
        connection.execute("PRAGMA foreign_keys = OFF")
    connection.execute("BEGIN IMMEDIATE")
    try:
        if postgres:
            from quiver.resources.postgres_schema import create_schema

            connection.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            create_schema(connection)
        connection.execute(_RECORD_SQL)
        if not _applied(connection, declared):  # another worker may have just done it
            plans = plan_changes(connection, resources)
            refuse(plans, mode, source)
            _apply(connection, plans, forced=mode == "force")
            stamp = now()
            for name, text in declared.items():
                connection.execute(_RECORD_WRITE, (name, text, stamp))
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
    connection: Connection
    source = path
    try:
        if is_postgres(path):
            from quiver.resources.postgres import PostgresConnection

            connection = PostgresConnection(path)
            source = connection.shown
        else:
            uri = Path(path).absolute().as_uri() + "?mode=ro"  # (percent-encodes ? and #)
            connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        return []  # no file yet: every table will be new
    try:
        refuse(plan_changes(connection, resources), mode, source)
    except ConfigError as exc:
        return [str(issue) for issue in exc.issues]
    except sqlite3.OperationalError:
        return []  # (a database not reached: what serving it would change is not known)
    finally:
        connection.close()
    return []


def _applied(connection: Connection, declared: dict[str, str]) -> bool:
    try:
        rows = connection.execute(f'SELECT name, declaration FROM "{RECORD}"').fetchall()
    except sqlite3.OperationalError:
        return False  # a file without the record: tables made before it, or none
    recorded = dict(rows)
    return all(recorded.get(name) == text for name, text in declared.items())


def _apply(connection: Connection, plans: list[Plan], *, forced: bool) -> None:
    rekeyed: dict[str, dict[Any, Any]] = {}
    dialect = dialect_of(connection)
    for plan in plans:
        table = plan.table
        if plan.existing is None:
            connection.execute(table.create_sql(dialect=dialect))
            for sql in table.indexes().values():
                connection.execute(sql)
        elif plan.rebuild and dialect == "postgresql":
            from quiver.resources.postgres_schema import alter

            alter(connection, plan, forced=forced)
        elif plan.rebuild:
            _rebuild(cast(sqlite3.Connection, connection), plan, rekeyed, forced=forced)
        else:
            for sql in plan.statements:
                connection.execute(sql)
    if dialect == "postgresql":
        return  # (its foreign keys hold throughout)
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
