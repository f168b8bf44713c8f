"""The rest of a served db.json: its singular documents and the whole database.

:class:`DocumentTarget` serves a singular document (json-server's ``/profile``)
and :class:`DatabaseTarget` the whole database (``GET /db``), from the SQLite
file :mod:`.database` seeded.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
from pydantic import Field

from quiver.errors import MethodNotAllowed
from quiver.plugins.base import PluginContext, PluginRequest
from quiver.plugins.responder import Response, TargetOptions, TargetType
from quiver.resources.errors import InvalidRequest, StorageFailed, UnsupportedMediaType, invalid
from quiver.resources.jsonserver.database import (
    open_sqlite,
    read_document,
    read_layout,
    snapshot,
    write_document,
)
from quiver.resources.target import etag_of

DOCUMENT_TARGET_TYPE = "resource-json-server-document"
DATABASE_TARGET_TYPE = "resource-json-server-db"
_JSON = b"application/json"
_MERGE_PATCH = b"application/merge-patch+json"
_DOCUMENT_METHODS = b"GET, HEAD, PUT, PATCH, POST, OPTIONS"


class DocumentOptions(TargetOptions):
    document: str = Field(description="The singular document served (its db.json key).")
    database: str = Field(description="The SQLite file holding it.")


class DocumentTarget(TargetType[DocumentOptions]):
    """A singular document of db.json (``/profile``): GET, PUT or POST to replace it,
    PATCH to merge into it."""

    name = DOCUMENT_TARGET_TYPE
    Options = DocumentOptions
    listed = False

    def __init__(self, options: DocumentOptions, context: PluginContext) -> None:
        super().__init__(options, context)
        self.connection = open_sqlite(options.database)

    def close(self) -> None:
        self.connection.close()

    def handle(self, request: PluginRequest) -> Response:
        method = request.method
        if method == b"OPTIONS":
            return Response(204, [(b"Allow", _DOCUMENT_METHODS)])
        if method not in (b"GET", b"HEAD", b"PUT", b"PATCH", b"POST"):
            raise MethodNotAllowed(headers=((b"Allow", _DOCUMENT_METHODS),))
        try:
            return self._answer(request, method)
        except sqlite3.Error as exc:
            raise StorageFailed("the resource store failed", internal=repr(exc)) from exc
        finally:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")

    def _answer(self, request: PluginRequest, method: bytes) -> Response:
        name = self.options.document
        if method in (b"GET", b"HEAD"):
            body = orjson.dumps(read_document(self.connection, name))
            return Response(200, [(b"Content-Type", _JSON), (b"ETag", etag_of(body))], body)
        sent = _json_object(request)
        self.connection.execute("BEGIN IMMEDIATE")
        document = sent
        if method == b"PATCH":
            document = {**read_document(self.connection, name), **sent}
        write_document(self.connection, name, document)
        self.connection.execute("COMMIT")
        body = orjson.dumps(document)
        status = 201 if method == b"POST" else 200
        return Response(status, [(b"Content-Type", _JSON), (b"ETag", etag_of(body))], body)


def _json_object(request: PluginRequest) -> dict[str, Any]:
    kind = (request.get(b"content-type") or b"").partition(b";")[0].strip().lower()
    if kind not in (b"", _JSON, _MERGE_PATCH):
        raise UnsupportedMediaType("send the body as application/json")
    try:
        document = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError as exc:
        raise invalid([{"pointer": "", "detail": f"not JSON: {exc}"}], InvalidRequest) from None
    if not isinstance(document, dict):
        raise invalid([{"pointer": "", "detail": "the document is a JSON object"}])
    return document


class DatabaseOptions(TargetOptions):
    database: str = Field(description="The SQLite file of the served db.json.")


class DatabaseTarget(TargetType[DatabaseOptions]):
    """``GET /db``: every collection and document, as json-server answers it."""

    name = DATABASE_TARGET_TYPE
    Options = DatabaseOptions
    listed = False

    def __init__(self, options: DatabaseOptions, context: PluginContext) -> None:
        super().__init__(options, context)
        self.layout = read_layout(options.database)
        self.connection = open_sqlite(options.database)

    def close(self) -> None:
        self.connection.close()

    def handle(self, request: PluginRequest) -> Response:
        if request.method not in (b"GET", b"HEAD"):
            raise MethodNotAllowed(headers=((b"Allow", b"GET, HEAD"),))
        try:
            body = orjson.dumps(snapshot(self.connection, self.layout))
        except sqlite3.Error as exc:
            raise StorageFailed("the resource store failed", internal=repr(exc)) from exc
        return Response(200, [(b"Content-Type", _JSON)], body)
