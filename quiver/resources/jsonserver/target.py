"""The json-server dialect of a resource: json-server 0.17's API over the resource's table.

A :class:`JsonServerTarget` answers a collection as json-server does::

    GET    /posts                  list (json-server's parameters, :mod:`.query`)
    GET    /posts/1/comments       the comments whose postId is 1
    POST   /posts                  201; id = the largest + 1 (or a random string id)
    POST   /posts/1/comments       creates a comment with postId 1
    GET    /posts/1                one item (?_embed=comments, ?_expand=user)
    PUT    /posts/1                replace
    PATCH  /posts/1                merge (application/json or merge-patch+json)
    DELETE /posts/1                200 {}; items pointing at it by postId go too

It differs where json-server fails silently or with a 500: a body that breaks the
inferred field types is a 422, an id already taken a 409, a missing item a 404
problem document.
"""

from __future__ import annotations

import math
import re
import secrets
import sqlite3
from typing import Any
from urllib.parse import quote, unquote, urlencode

import orjson

from quiver.config.resources import JSON_SERVER_TARGET_TYPE, Resource
from quiver.errors import MethodNotAllowed
from quiver.plugins.base import PluginContext, PluginRequest
from quiver.plugins.responder import Response
from quiver.resources.errors import (
    InvalidRequest,
    ItemNotFound,
    StorageFailed,
    invalid,
)
from quiver.resources.jsonserver.infer import ID, foreign_key, singular
from quiver.resources.jsonserver.query import (
    ServerQuery,
    lower_text,
    read_server_query,
    regexp,
    text_sql,
)
from quiver.resources.jsonserver.table import EXTRA, ServerTable, add_extra_column
from quiver.resources.storage import ANY_TYPE
from quiver.resources.target import KeyValue, ResourceOptions, ResourceTarget

_JSON = b"application/json"
_MERGE_PATCH = b"application/merge-patch+json"
_COLLECTION_METHODS = b"GET, HEAD, POST, OPTIONS"
_ITEM_METHODS = b"GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
_TOO_LARGE = "an integer beyond -2**63 .. 2**63 - 1, more than the store keeps"


def js_text(value: Any) -> str:
    """``value`` as JavaScript's ``toString`` writes it: how json-server compares ids."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class JsonServerTarget(ResourceTarget):
    """A resource of the ``json-server`` dialect."""

    name = JSON_SERVER_TARGET_TYPE
    Options = ResourceOptions
    listed = False

    def __init__(self, options: ResourceOptions, context: PluginContext) -> None:
        super().__init__(options, context)
        sqlite = self.connection
        assert isinstance(sqlite, sqlite3.Connection), "a db.json is served from SQLite"
        sqlite.create_function("regexp", 2, regexp, deterministic=True)
        sqlite.create_function("lower_text", 1, lower_text, deterministic=True)
        resource = self.table.resource
        add_extra_column(sqlite, resource.name)
        self.table = ServerTable.of(resource)
        columns = ", ".join(f'"{column}"' for column in self.table.columns)
        self.select_one = f'SELECT {columns} FROM "{resource.name}" WHERE "{ID}" = ?'
        self.select_list = f'SELECT {columns} FROM "{resource.name}"'
        self.resources = {each.name: each for each in options.resources}
        name = re.escape(resource.name.encode())
        self.nested = re.compile(rb"/([a-z0-9_]+)/([^/]+)/" + name + rb"/?")
        inserted = [ID, *resource.fields, EXTRA]
        names = ", ".join(f'"{column}"' for column in inserted)
        marks = ", ".join("?" * len(inserted))
        self.insert_given = f'INSERT INTO "{resource.name}" ({names}) VALUES ({marks})'
        kind = self.connection.execute(
            f"SELECT type FROM pragma_table_info('{resource.name}') WHERE pk = 1"
        ).fetchone()
        self.text_key = kind is not None and kind[0].upper() == "TEXT"

    # -- dispatch --------------------------------------------------------------------

    def handle(self, request: PluginRequest) -> Response:
        path = request.raw_path.partition(b"?")[0]
        method = request.method
        try:
            nested = self.nested.fullmatch(path)
            if nested is not None and nested[1].decode() in self.resources:
                return self._nested(request, nested[1].decode(), nested[2], path)
            match = self.pattern.fullmatch(path)
            if match is None:
                raise ItemNotFound(f"no resource at {path.decode('latin-1')}")
            key = match.groups()[-1]
            if method == b"OPTIONS":
                return Response(204, [(b"Allow", _ITEM_METHODS if key else _COLLECTION_METHODS)])
            if key is not None:
                return self._item(request, method, [], self._item_key(key))
            if method in (b"GET", b"HEAD"):
                return self._server_list(request, path, None)
            if method == b"POST":
                return self._server_create(request, {})
            raise MethodNotAllowed(headers=((b"Allow", _COLLECTION_METHODS),))
        except sqlite3.IntegrityError as exc:
            raise self._integrity(exc) from exc
        except sqlite3.Error as exc:
            raise StorageFailed("the resource store failed", internal=repr(exc)) from exc
        except OverflowError:  # JSON reads integers SQLite cannot hold (up to 2**64 - 1)
            raise invalid([{"pointer": "", "detail": _TOO_LARGE}]) from None
        finally:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")

    def _nested(self, request: PluginRequest, parent: str, key: bytes, path: bytes) -> Response:
        """``/posts/1/comments``: the comments with ``postId`` 1, or a new one."""
        field = foreign_key(parent)
        value = unquote(key.decode("latin-1"))
        if request.method in (b"GET", b"HEAD"):
            return self._server_list(request, path, (field, value))
        if request.method == b"POST":
            typed: Any = value
            kind = self.table.types.get(field, ANY_TYPE)
            if kind in ("integer", "number", ANY_TYPE) and value.isdigit():
                typed = int(value)
            return self._server_create(request, {field: typed})
        raise MethodNotAllowed(headers=((b"Allow", b"GET, HEAD, POST"),))

    def _item_key(self, value: bytes) -> Any:
        if self.text_key:
            return unquote(value.decode("latin-1"))
        return self._key(self.table, value)

    def _item(
        self, request: PluginRequest, method: bytes, parents: list[KeyValue], key: Any
    ) -> Response:
        if method in (b"GET", b"HEAD"):
            query = read_server_query(request.query.decode("latin-1"), self.table)
            item = self._decorate([self._find(key, [])], query)[0]
            body, tag = self._render(item)
            if self._none_match(request, tag):
                return Response(304, [(b"ETag", tag)])
            return Response(200, [(b"Content-Type", _JSON), (b"ETag", tag)], body)
        if method == b"PATCH":
            patch = self._body(request, (_JSON, _MERGE_PATCH))
            if not isinstance(patch, dict):
                raise invalid([{"pointer": "", "detail": "a patch is a JSON object"}])
            changes = self._strip(patch)
            return self._write(request, [], key, lambda item: self._strip({**item, **changes}))
        if method == b"DELETE":
            return self._remove(request, key)
        return super()._item(request, method, parents, key)

    def _body(self, request: PluginRequest, accepted: tuple[bytes, ...]) -> Any:
        # json-server reads a body sent without a Content-Type as JSON too
        if not self._media_type(request) and _JSON in accepted:
            try:
                return orjson.loads(request.body or b"")
            except orjson.JSONDecodeError as exc:
                raise invalid(
                    [{"pointer": "", "detail": f"not JSON: {exc}"}], InvalidRequest
                ) from None
        return super()._body(request, accepted)

    # -- reading -----------------------------------------------------------------------

    def _server_list(
        self, request: PluginRequest, path: bytes, nested: tuple[str, str] | None
    ) -> Response:
        query = read_server_query(request.query.decode("latin-1"), self.table)
        if nested is not None:
            found = text_sql(self.table, nested[0])
            assert found is not None  # a field of the table
            query.where.append(f"({found[0]}) = ?")
            query.args.extend([*found[1], nested[1]])
        where = query.where_sql()
        limit, offset = query.window()
        order = ", ".join([*query.order, "rowid ASC"])
        sql = f"{self.select_list}{where} ORDER BY {order} LIMIT ? OFFSET ?"
        arguments = (*query.args, *query.order_args, limit, offset)
        rows = self.connection.execute(sql, arguments).fetchall()
        items = self._decorate([self.table.from_row(row) for row in rows], query)
        headers = [(b"Content-Type", _JSON)]
        if query.counted:
            count_sql = f'SELECT COUNT(*) FROM "{self.table.name}"{where}'
            total = self.connection.execute(count_sql, query.args).fetchone()[0]
            headers.append((b"X-Total-Count", str(total).encode()))
            exposed = b"X-Total-Count"
            if query.page is not None:
                links = self._page_links(request, path, query, total, len(items))
                if links:
                    headers.append((b"Link", links))
                exposed += b", Link"
            headers.append((b"Access-Control-Expose-Headers", exposed))
        return Response(200, headers, orjson.dumps(items))

    def _page_links(
        self, request: PluginRequest, path: bytes, query: ServerQuery, total: int, shown: int
    ) -> bytes:
        """json-server's first, prev, next and last pages, as absolute URLs."""
        page, size = query.page or 1, query.limit or 10
        if shown == 0:
            return b""
        pages: list[tuple[str, int]] = []
        if shown != total:
            pages.append(("first", 1))
        if page > 1:
            pages.append(("prev", page - 1))
        if page * size < total:
            pages.append(("next", page + 1))
        if shown != total:
            pages.append(("last", math.ceil(total / size)))
        host = (request.get(b"host") or b"").decode("latin-1")
        base = (f"http://{host}" if host else "") + path.decode("latin-1")
        kept = [(name, value) for name, value in query.params if name != "_page"]
        links = [
            f'<{base}?{urlencode([*kept, ("_page", str(number))])}>; rel="{rel}"'
            for rel, number in pages
        ]
        return ", ".join(links).encode("latin-1")

    def _decorate(self, items: list[dict[str, Any]], query: ServerQuery) -> list[dict[str, Any]]:
        """``_embed=comments``: each item's comments; ``_expand=user``: the user its
        ``userId`` names."""
        for name in query.embed:
            child = self.resources.get(name)
            key = foreign_key(self.table.name)
            if child is None:
                continue
            for item in items:
                item[name] = self._matching(child, key, js_text(item[ID]))
        for name in query.expand:
            parent = next((r for r in self.resources.values() if singular(r.name) == name), None)
            key = name + "Id"
            if parent is None:
                continue
            for item in items:
                if key in item:
                    found = self._matching(parent, ID, js_text(item[key]))
                    if found:
                        item[name] = found[0]
        return items

    def _matching(self, resource: Resource, field: str, value: str) -> list[dict[str, Any]]:
        table = ServerTable.of(resource)
        found = text_sql(table, field)
        assert found is not None
        columns = ", ".join(f'"{column}"' for column in table.columns)
        sql = f'SELECT {columns} FROM "{resource.name}" WHERE ({found[0]}) = ? ORDER BY rowid'
        rows = self.connection.execute(sql, (*found[1], value)).fetchall()
        return [table.from_row(row) for row in rows]

    # -- writing -----------------------------------------------------------------------

    def _server_create(self, request: PluginRequest, nested: dict[str, Any]) -> Response:
        """POST: a new item, ``nested`` (its parent's key) set."""
        document = self._body(request, (_JSON,))
        if not isinstance(document, dict):
            raise invalid([{"pointer": "", "detail": "an item is a JSON object"}])
        given = document.get(ID)
        values = self._values({**self.schema.defaults, **self._strip(document), **nested})
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        key = self._new_key() if given is None else self._given_key(given)
        connection.execute(self.insert_given, (key, *values.values()))
        row = connection.execute(self.select_one, (key,)).fetchone()
        connection.execute("COMMIT")
        body, tag = self._render(self.table.from_row(row))
        # the item's own URL, also for one made under its parent (/posts/1/comments)
        location = f"{self.table.resource.collection_path}/{quote(str(key))}".encode()
        headers = [(b"Content-Type", _JSON), (b"ETag", tag), (b"Location", location)]
        return Response(201, headers, body)

    def _values(self, document: Any) -> dict[str, Any]:
        assert isinstance(self.table, ServerTable)  # made so in __init__
        return self.table.values(self.schema, document)

    def _write(
        self, request: PluginRequest, parents: list[KeyValue], key: Any, change: Any
    ) -> Response:
        """PUT and PATCH: ``change`` makes the new item (without its id) of the current
        one, under If-Match when sent."""
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        current = self._find(key, [])
        self._precondition(request, self._render(current)[1])
        document = change(self._strip(current))
        if request.method == b"PUT" and isinstance(document, dict):
            document = {**self.schema.defaults, **document}
        values = self._values(document)
        assignments = ", ".join(f'"{name}" = ?' for name in values)
        connection.execute(
            f'UPDATE "{self.table.name}" SET {assignments} WHERE "{ID}" = ?',
            (*values.values(), key),
        )
        row = connection.execute(self.select_one, (key,)).fetchone()
        connection.execute("COMMIT")
        body, tag = self._render(self.table.from_row(row))
        return Response(200, [(b"Content-Type", _JSON), (b"ETag", tag)], body)

    def _new_key(self) -> Any:
        """The next integer after the largest, as json-server; a random string id in a
        collection of string ids."""
        if self.text_key:
            return secrets.token_urlsafe(6)
        sql = f'SELECT COALESCE(MAX("{ID}"), 0) + 1 FROM "{self.table.name}"'
        return self.connection.execute(sql).fetchone()[0]

    def _given_key(self, given: Any) -> Any:
        if self.text_key and isinstance(given, str | int) and not isinstance(given, bool):
            return str(given)
        if not self.text_key and isinstance(given, int) and not isinstance(given, bool):
            return given
        kind = "a string" if self.text_key else "an integer"
        raise invalid([{"pointer": "/id", "detail": f"an id here is {kind}"}])

    def _remove(self, request: PluginRequest, key: Any) -> Response:
        """Deletes the item and, as json-server, the items pointing at it (``postId``)."""
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        current = self._find(key, [])
        self._precondition(request, self._render(current)[1])
        connection.execute(f'DELETE FROM "{self.table.name}" WHERE "{ID}" = ?', (key,))
        pointing = foreign_key(self.table.name)
        for other in self.resources.values():
            if other.name != self.table.name:
                found = text_sql(ServerTable.of(other), pointing)
                assert found is not None
                sql = f'DELETE FROM "{other.name}" WHERE ({found[0]}) = ?'
                connection.execute(sql, (*found[1], js_text(key)))
        connection.execute("COMMIT")
        return Response(200, [(b"Content-Type", _JSON)], b"{}")
