"""The ``resource`` target type: a declared resource's REST API, answered in the worker.

Each entry of the ``resources`` section compiles into a target of this type and a
route to it (:func:`quiver.config.resources.expand`)::

    GET    /items              list (filters, sort, fields, limit, page, count)
    POST   /items              create: 201 with Location
    GET    /items/{id}         one item (HEAD too)
    PUT    /items/{id}         replace
    PATCH  /items/{id}         application/merge-patch+json or application/json-patch+json
    DELETE /items/{id}         204

Every representation carries a strong ETag (RFC 9110 §8.8.3); If-Match guards
writes (412) and If-None-Match reads (304).  Writes run in one ``BEGIN IMMEDIATE``
transaction (in PostgreSQL: one transaction that locks the row it reads first), so
a precondition and the write it guards see the same row even when several workers
share the database.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import Field

from quiver.config.resources import (
    RESOURCE_TARGET_TYPE,
    MigrateMode,
    Resource,
    ancestors,
    path_template,
)
from quiver.errors import HTTPError, MethodNotAllowed
from quiver.plugins.base import PluginContext, PluginRequest
from quiver.plugins.responder import Response, TargetOptions, TargetType
from quiver.resources.errors import (
    Conflict,
    InvalidRequest,
    ItemNotFound,
    PreconditionFailed,
    PreconditionRequired,
    StorageFailed,
    Unprocessable,
    UnsupportedMediaType,
    invalid,
)
from quiver.resources.patch import json_patch, merge_patch
from quiver.resources.query import ListQuery, encode_cursor, read_query
from quiver.resources.storage import LOCK_ROW, Table, dialect_of, now, open_database, tables_of
from quiver.resources.validate import ItemSchema

#: an item's key: an integer, or a UUID or given string
KeyValue = int | str

_JSON = b"application/json"
_MERGE_PATCH = b"application/merge-patch+json"
_JSON_PATCH = b"application/json-patch+json"
_COLLECTION_METHODS = b"GET, HEAD, POST, OPTIONS"
_ITEM_METHODS = b"GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
_ACCEPT_PATCH = (b"Accept-Patch", _MERGE_PATCH + b", " + _JSON_PATCH)
#: how many list queries a target keeps read (then it starts over)
_QUERIES_KEPT = 256


@dataclass(frozen=True, slots=True)
class _Listed:
    """A list query as read, with the statements that answer it."""

    query: ListQuery
    select: str  # LIMIT and OFFSET last
    count: str


class ResourceOptions(TargetOptions):
    resource: str = Field(description="The resource this target serves.")
    resources: list[Resource] = Field(description="Every declared resource (its parents).")
    database: str = Field(
        description="The SQLite file or PostgreSQL URL the resources are stored in."
    )
    migrate: MigrateMode = Field(
        "safe", description="Whether changes that lose data are applied (force) or refused."
    )


def etag_of(body: bytes) -> bytes:
    """A strong validator: the same bytes, the same tag (RFC 9110 §8.8.3)."""
    return b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'


def _tags(value: bytes) -> list[bytes]:
    return [tag.strip() for tag in value.split(b",") if tag.strip()]


class ResourceTarget(TargetType[ResourceOptions]):
    """Answers one declared resource's collection and items."""

    name = RESOURCE_TARGET_TYPE
    Options = ResourceOptions
    listed = False

    def __init__(self, options: ResourceOptions, context: PluginContext) -> None:
        super().__init__(options, context)
        by_name = {resource.name: resource for resource in options.resources}
        resource = by_name[options.resource]
        tables = tables_of(options.resources)
        self.table = tables[resource.name]
        self.key = self.table.key
        self.schema = ItemSchema(resource)
        #: the ancestors' tables, the root first
        self.ancestors = [tables[above.name] for above in ancestors(resource, by_name)]
        #: each ancestor's query "does this parent exist", with its parent's key too
        self.parent_checks = [self._parent_check(table) for table in self.ancestors]
        template = path_template(resource, by_name)
        pattern = re.sub(r"\\\{[a-z0-9_]+\\\}", "([^/]+)", re.escape(template))
        self.pattern = re.compile(pattern.encode() + rb"(?:/([^/]+))?/?")
        self.connection = open_database(options.database, options.resources, options.migrate)
        self.queries: dict[bytes, _Listed] = {}
        key = self.key.name
        columns = ", ".join(f'"{column}"' for column in self.table.columns)
        self.select_one = f'SELECT {columns} FROM "{resource.name}" WHERE "{key}" = ?'
        #: the row a write reads before it changes it, kept from other writers meanwhile
        self.select_written = self.select_one + LOCK_ROW[dialect_of(self.connection)]
        self.select_list = f'SELECT {columns} FROM "{resource.name}"'
        inserted = self.table.inserted
        names = ", ".join(f'"{column}"' for column in inserted)
        marks = ", ".join("?" * len(inserted))
        self.insert_sql = (
            f'INSERT INTO "{resource.name}" ({names}) VALUES ({marks}) RETURNING {columns}'
        )
        self.delete_sql = f'DELETE FROM "{resource.name}" WHERE "{key}" = ?'
        #: the fields a write sets: a given key is never changed
        self.written = [name for name in resource.fields if name != key]
        assignments = ", ".join(f'"{name}" = ?' for name in self.written)
        if resource.timestamps:
            assignments += ', "updated_at" = ?'
        self.update_sql = (
            f'UPDATE "{resource.name}" SET {assignments} WHERE "{key}" = ? RETURNING {columns}'
        )
        self.managed = set(resource.managed_columns())

    @staticmethod
    def _parent_check(table: Table) -> str:
        resource = table.resource
        sql = f'SELECT 1 FROM "{resource.name}" WHERE "{table.key.name}" = ?'
        if resource.parent is not None:
            sql += f' AND "{resource.parent.field}" = ?'
        return sql

    def close(self) -> None:
        self.connection.close()

    # -- dispatch --------------------------------------------------------------------

    def handle(self, request: PluginRequest) -> Response:
        path = request.raw_path.partition(b"?")[0]
        match = self.pattern.fullmatch(path)
        if match is None:
            raise ItemNotFound(f"no resource at {path.decode('latin-1')}")
        groups = match.groups()
        parents: list[KeyValue] = []
        if self.ancestors:
            parents = [
                self._key(table, value)
                for table, value in zip(self.ancestors, groups[:-1], strict=True)
            ]
        method = request.method
        if method == b"OPTIONS":
            allow = _COLLECTION_METHODS if groups[-1] is None else _ITEM_METHODS
            return Response(204, [(b"Allow", allow), _ACCEPT_PATCH])
        if request.query and not (groups[-1] is None and method in (b"GET", b"HEAD")):
            name = request.query.partition(b"=")[0].decode("latin-1")
            raise InvalidRequest(
                f"{name}: only lists take query parameters",
                extensions={"errors": [{"parameter": name, "detail": "unknown query parameter"}]},
            )
        try:
            self._check_parents(parents)
            if groups[-1] is None:
                return self._collection(request, method, parents, path)
            return self._item(request, method, parents, self._key(self.table, groups[-1]))
        except sqlite3.IntegrityError as exc:
            raise self._integrity(exc) from exc
        except sqlite3.Error as exc:
            raise StorageFailed("the resource store failed", internal=repr(exc)) from exc
        finally:
            # whatever stopped a write half way, the next request starts clean
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")

    def _collection(
        self, request: PluginRequest, method: bytes, parents: list[KeyValue], path: bytes
    ) -> Response:
        if method in (b"GET", b"HEAD"):
            return self._list(request, parents, path)
        if method == b"POST":
            return self._create(request, parents, path)
        raise MethodNotAllowed(headers=((b"Allow", _COLLECTION_METHODS),))

    def _item(
        self, request: PluginRequest, method: bytes, parents: list[KeyValue], key: KeyValue
    ) -> Response:
        if method in (b"GET", b"HEAD"):
            item = self._find(key, parents)
            body, tag = self._render(item)
            if self._none_match(request, tag):
                return Response(304, [(b"ETag", tag)])
            return Response(200, [(b"Content-Type", _JSON), (b"ETag", tag)], body)
        if method == b"PUT":
            document = self._strip(self._body(request, (_JSON,)))
            return self._write(request, parents, key, lambda _: document)
        if method == b"PATCH":
            kind = self._media_type(request)
            patch = self._body(request, (_MERGE_PATCH, _JSON_PATCH))
            if kind == _MERGE_PATCH:
                return self._write(request, parents, key, lambda item: merge_patch(item, patch))
            return self._write(
                request, parents, key, lambda item: self._strip(json_patch(item, patch))
            )
        if method == b"DELETE":
            return self._delete(request, parents, key)
        raise MethodNotAllowed(headers=((b"Allow", _ITEM_METHODS),))

    # -- reading -----------------------------------------------------------------------

    @staticmethod
    def _key(table: Table, segment: bytes) -> KeyValue:
        try:
            return table.key.parse(segment)
        except ValueError:
            raise ItemNotFound(f"no {table.name} item {segment.decode('latin-1')!r}") from None

    def _check_parents(self, parents: list[KeyValue]) -> None:
        above: KeyValue | None = None
        for table, sql, key in zip(self.ancestors, self.parent_checks, parents, strict=True):
            args = (key,) if above is None else (key, above)
            if self.connection.execute(sql, args).fetchone() is None:
                raise ItemNotFound(f"no {table.name} item {key}")
            above = key

    def _find(
        self, key: KeyValue, parents: list[KeyValue], select: str | None = None
    ) -> dict[str, Any]:
        row = self.connection.execute(select or self.select_one, (key,)).fetchone()
        parent = self.table.resource.parent
        if row is None or (parent is not None and row[1] != parents[-1]):
            raise ItemNotFound(f"no {self.table.name} item {key}")
        return self.table.from_row(row)

    def _render(self, item: dict[str, Any]) -> tuple[bytes, bytes]:
        body = orjson.dumps(item)
        return body, etag_of(body)

    def _none_match(self, request: PluginRequest, tag: bytes) -> bool:
        # RFC 9110 §13.1.2: weak comparison; "*" matches any current representation
        value = request.get(b"if-none-match")
        if value is None:
            return False
        tags = _tags(value)
        return b"*" in tags or tag in (t.removeprefix(b"W/") for t in tags)

    def _list(self, request: PluginRequest, parents: list[KeyValue], path: bytes) -> Response:
        listed = self._query(request.query)
        query = listed.query
        # (a child's list ends its WHERE with its parent's column)
        args = query.args if not parents else [*query.args, parents[-1]]
        offset = 0 if query.cursor is not None else (query.page - 1) * query.limit
        rows = self.connection.execute(listed.select, (*args, query.limit + 1, offset)).fetchall()
        more = len(rows) > query.limit
        from_row = self.table.from_row
        items = [from_row(row) for row in rows[: query.limit]]
        if query.cursor is not None:
            if query.backward:  # (read in the reversed order)
                items.reverse()
            links = self._cursor_links(path, query, items, more)
        else:
            links = self._links(path, query.kept, query.page, more)
        if query.fields is not None:
            chosen = query.fields
            items = [{name: item[name] for name in chosen if name in item} for item in items]
        body = orjson.dumps(items)
        tag = etag_of(body)
        headers = [(b"Content-Type", _JSON), (b"ETag", tag), (b"Link", links)]
        if query.count:
            total = self.connection.execute(listed.count, args).fetchone()[0]
            headers.append((b"X-Total-Count", str(total).encode()))
        if self._none_match(request, tag):
            return Response(304, [(b"ETag", tag)])
        return Response(200, headers, body)

    def _query(self, raw: bytes) -> _Listed:
        """The list query of a query string and its SQL, made once: the same lists are
        asked for again and again."""
        listed = self.queries.get(raw)
        if listed is None:
            query = read_query(raw.decode("latin-1"), self.table)
            where = query.where
            parent = self.table.resource.parent
            if parent is not None:
                where = [*where, f'"{parent.field}" = ?']
            where_sql = " WHERE " + " AND ".join(where) if where else ""
            listed = _Listed(
                query,
                f"{self.select_list}{where_sql} ORDER BY {query.order_sql} LIMIT ? OFFSET ?",
                f'SELECT COUNT(*) FROM "{self.table.name}"{where_sql}',
            )
            if len(self.queries) >= _QUERIES_KEPT:
                self.queries.clear()
            self.queries[raw] = listed
        return listed

    def _links(self, path: bytes, kept: bytes, page: int, more: bool) -> bytes:
        # RFC 8288 §3: relative references, resolved against the request's URI
        base = b"<" + path + b"?" + kept + b"page="

        def link(number: int, rel: bytes) -> bytes:
            return base + str(number).encode() + b'>; rel="' + rel + b'"'

        links = [link(1, b"first")]
        if page > 1:
            links.append(link(page - 1, b"prev"))
        if more:
            links.append(link(page + 1, b"next"))
        return b", ".join(links)

    def _cursor_links(
        self, path: bytes, query: ListQuery, items: list[dict[str, Any]], more: bool
    ) -> bytes:
        """first; next after the page's last item and prev before its first, where
        items may be (``more``: the read went on past the page)."""
        base = b"<" + path + b"?" + query.kept + b"cursor="
        links = [base + b'>; rel="first"']

        def link(item: dict[str, Any], backward: bool, rel: bytes) -> bytes:
            values = [self.table.to_sql(column, item.get(column)) for column, _ in query.keys]
            return base + encode_cursor(values, backward).encode() + b'>; rel="' + rel + b'"'

        if items and (more if query.backward else bool(query.cursor)):
            links.append(link(items[0], True, b"prev"))
        if items and (query.backward or more):
            links.append(link(items[-1], False, b"next"))
        return b", ".join(links)

    # -- writing -----------------------------------------------------------------------

    def _media_type(self, request: PluginRequest) -> bytes:
        value = request.get(b"content-type") or b""
        return value.partition(b";")[0].strip().lower()

    def _body(self, request: PluginRequest, accepted: tuple[bytes, ...]) -> Any:
        kind = self._media_type(request)
        if kind not in accepted:
            listed = ", ".join(each.decode() for each in accepted)
            headers = (_ACCEPT_PATCH,) if _JSON not in accepted else ()
            raise UnsupportedMediaType(f"send the body as {listed}", headers=headers)
        try:
            return orjson.loads(request.body or b"")
        except orjson.JSONDecodeError as exc:
            detail = f"not JSON: {exc}"
            raise invalid([{"pointer": "", "detail": detail}], InvalidRequest) from None

    def _strip(self, document: Any) -> Any:
        """A representation sent back without the keys the store keeps (key, parent,
        timestamps): they are not the client's to change."""
        if isinstance(document, dict):
            return {name: value for name, value in document.items() if name not in self.managed}
        return document

    def _create(self, request: PluginRequest, parents: list[KeyValue], path: bytes) -> Response:
        document = self._body(request, (_JSON,))
        if isinstance(document, list):
            return self._create_many(document, parents)
        values = self._row(document, parents)
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        item = self._insert(values)
        connection.execute("COMMIT")
        body, tag = self._render(item)
        location = path.rstrip(b"/") + b"/" + self.key.segment(item[self.key.name])
        headers = [(b"Content-Type", _JSON), (b"ETag", tag), (b"Location", location)]
        return Response(201, headers, body)

    def _create_many(self, documents: list[Any], parents: list[KeyValue]) -> Response:
        """A JSON array creates every item or none: the pointers of a refusal start
        with the item's index."""
        rows: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        for index, document in enumerate(documents):
            try:
                rows.append(self._row(document, parents))
            except Unprocessable as exc:
                failures = exc.extensions.get("errors")
                for error in failures if isinstance(failures, list) else []:
                    errors.append({**error, "pointer": f"/{index}{error['pointer']}"})
        if errors:
            raise invalid(errors)
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        items = [self._insert(row) for row in rows]
        connection.execute("COMMIT")
        body = orjson.dumps(items)
        return Response(201, [(b"Content-Type", _JSON), (b"ETag", etag_of(body))], body)

    def _row(self, document: Any, parents: list[KeyValue]) -> dict[str, Any]:
        """The column values of a new item (every column of the insert, in order)."""
        if isinstance(document, dict):
            document = {**self.schema.defaults, **document}
        item = self.schema.check(document)
        resource = self.table.resource
        # in the order of the table's columns, as ``insert_sql`` names them
        values: dict[str, Any] = {}
        key = self.key
        if key.type == "uuid":
            values[key.name] = key.new()
        elif key.type == "given":  # (an integer key sent as 12.0 was made 12 by the check)
            values[key.name] = item[key.name]
        if resource.parent is not None:
            values[resource.parent.field] = parents[-1]
        for name in self.written:
            values[name] = self.table.to_sql(name, item.get(name))
        if resource.timestamps:
            values["created_at"] = values["updated_at"] = now()
        return values

    def _insert(self, values: dict[str, Any]) -> dict[str, Any]:
        """Inserts a row of ``_row``; the item as stored (RETURNING: SQLite 3.35+)."""
        row = self.connection.execute(self.insert_sql, tuple(values.values())).fetchone()
        return self.table.from_row(row)

    def _precondition(self, request: PluginRequest, tag: bytes) -> None:
        # RFC 9110 §13.1.2: a write with If-None-Match fails when it matches the item
        # ("*": any item), weak comparison
        if request.get(b"if-none-match") is not None and self._none_match(request, tag):
            raise PreconditionFailed("the item exists in this version (If-None-Match)")
        # RFC 9110 §13.1.1: strong comparison; a weak tag never matches
        value = request.get(b"if-match")
        if value is None:
            if self.table.resource.require_if_match:
                raise PreconditionRequired("send If-Match with the item's ETag")
            return
        tags = _tags(value)
        if b"*" not in tags and tag not in tags:
            raise PreconditionFailed("the item changed: fetch it again (If-Match)")

    def _write(
        self, request: PluginRequest, parents: list[KeyValue], key: KeyValue, change: Any
    ) -> Response:
        resource = self.table.resource
        connection = self.connection
        # the precondition and the write see one row: no other worker writes between
        # (a refusal rolls back in ``handle``)
        connection.execute("BEGIN IMMEDIATE")
        current = self._find(key, parents, self.select_written)
        self._precondition(request, self._render(current)[1])
        fields = {name: value for name, value in current.items() if name in resource.fields}
        if request.method == b"PUT":
            document = change(fields)
            if isinstance(document, dict):
                document = {**self.schema.defaults, **document}
        elif self._media_type(request) == _MERGE_PATCH:
            document = change(fields)
        else:
            document = change(current)
        if self.key.type == "given":
            document = self._keep_key(document, key)
        item = self.schema.check(document)
        values = [self.table.to_sql(name, item.get(name)) for name in self.written]
        if resource.timestamps:
            values.append(now())
        row = connection.execute(self.update_sql, (*values, key)).fetchone()
        connection.execute("COMMIT")
        body, tag = self._render(self.table.from_row(row))
        return Response(200, [(b"Content-Type", _JSON), (b"ETag", tag)], body)

    def _keep_key(self, document: Any, key: KeyValue) -> Any:
        """A given key stays what it is: a body may leave it out or repeat it, not
        change it."""
        if not isinstance(document, dict):
            return document
        name = self.key.name
        sent = document.get(name, key)
        if sent != key or type(sent) is not type(key):
            detail = "the key of an item cannot change"
            raise invalid([{"pointer": f"/{name}", "detail": detail}])
        return {**document, name: key}

    def _delete(self, request: PluginRequest, parents: list[KeyValue], key: KeyValue) -> Response:
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        current = self._find(key, parents, self.select_written)
        self._precondition(request, self._render(current)[1])
        connection.execute(self.delete_sql, (key,))
        connection.execute("COMMIT")
        return Response(204, [])

    def _integrity(self, exc: sqlite3.IntegrityError) -> HTTPError:
        text = str(exc)
        if text.startswith("UNIQUE constraint failed:"):
            column = text.rpartition(".")[2]
            detail = "another item has this value"
            return Conflict(
                f"/{column}: {detail}",
                extensions={"errors": [{"pointer": f"/{column}", "detail": detail}]},
            )
        if "FOREIGN KEY" in text:
            return Conflict("the item has children: delete them first")
        return Unprocessable("the item breaks a constraint of the store")
