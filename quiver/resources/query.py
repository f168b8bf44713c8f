"""The query of a list: filters, sort, fields, limit, page and count, read into SQL.

``field=value`` and ``field[op]=value`` filter (op: ne, lt, lte, gt, gte, in, nin,
like, ilike, null); ``sort=-price,name`` orders; ``fields=id,name`` projects;
``limit`` and ``page`` (from 1) paginate; ``cursor`` (empty to start) pages by the
sort keys instead (keyset pagination: no rows skipped or repeated when items are
added meanwhile); ``count=true`` asks for X-Total-Count.
Any other parameter is an error: a misspelt filter must not pass for "no filter".
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import orjson

from quiver.resources.errors import InvalidRequest
from quiver.resources.storage import UNICODE_LOWER, Table
from quiver.resources.validate import INT64_MAX, INT64_MIN

_FILTER = re.compile(r"([a-z_][a-z0-9_]*)(?:\[([a-z]+)\])?")
_COMPARE = {"ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_SCALARS = ("string", "number", "integer", "boolean")


@dataclass(slots=True)
class ListQuery:
    """A list request read: the WHERE clause with its arguments, and the page asked."""

    where: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    #: the sort keys: (column, descending), the primary key last
    keys: list[tuple[str, bool]] = field(default_factory=list)
    #: the sort values after which the page starts; [] for the first; None: page mode
    cursor: list[Any] | None = None
    #: the page ends before the cursor instead (a ``prev`` link's)
    backward: bool = False
    #: the sorted columns that may hold NULL (sorted first, as SQLite does)
    nullable: frozenset[str] = frozenset()
    fields: list[str] | None = None
    limit: int = 20
    page: int = 1
    count: bool = False
    #: the parameters as sent, for the Link header's URLs
    params: list[tuple[str, str]] = field(default_factory=list)
    #: the query string as sent without ``page`` and ``cursor``, ending with "&" when
    #: not empty: the Link header's URLs add the page or cursor they point to
    kept: bytes = b""

    @property
    def order_sql(self) -> str:
        """ORDER BY's terms: NULLs first in an ascending sort and last in a descending
        one, as SQLite sorts them (said for PostgreSQL, which sorts them the other way);
        a backward page reads the order reversed."""
        terms = []
        for column, descending in self.keys:
            down = descending != self.backward
            term = f'"{column}" {"DESC" if down else "ASC"}'
            if column in self.nullable:
                term += " NULLS LAST" if down else " NULLS FIRST"
            terms.append(term)
        return ", ".join(terms)


def _bad(parameter: str, detail: str) -> InvalidRequest:
    return InvalidRequest(
        f"{parameter}: {detail}",
        extensions={"errors": [{"parameter": parameter, "detail": detail}]},
    )


def _value(table: Table, column: str, text: str, parameter: str) -> Any:
    kind = table.types[column]
    try:
        if kind == "integer":
            number = int(text)
            if not INT64_MIN <= number <= INT64_MAX:
                raise _bad(parameter, f"out of range (a 64-bit integer): {text!r}")
            return number
        if kind == "number":
            real = float(text)
            if not math.isfinite(real):
                raise ValueError
            return real
    except ValueError:
        raise _bad(parameter, f"not a {kind}: {text!r}") from None
    if kind == "boolean":
        if text not in ("true", "false"):
            raise _bad(parameter, f"not a boolean (true or false): {text!r}")
        return 1 if text == "true" else 0
    return text


def _positive(parameter: str, text: str) -> int:
    # (at most 2^31 - 1: an offset of pages as large still fits in 64 bits)
    if not text.isdigit() or not 1 <= int(text) <= 2**31 - 1:
        raise _bad(parameter, f"a positive integer below 2^31, got {text!r}")
    return int(text)


def read_query(query: str, table: Table) -> ListQuery:
    """The list query of ``query`` (the raw query string) on ``table``; 400 for any
    parameter that is unknown or cannot be read."""
    resource = table.resource
    read = ListQuery(limit=resource.limit.default)
    read.params = parse_qsl(query, keep_blank_values=True)
    for name, text in read.params:
        if name == "sort":
            for key in text.split(","):
                column = key[1:] if key[:1] in ("-", "+") else key
                if column not in table.types or table.types[column] not in _SCALARS:
                    raise _bad(name, f"cannot sort by {column!r}")
                read.keys.append((column, key[:1] == "-"))
        elif name == "fields":
            chosen = [part for part in text.split(",") if part]
            unknown = [part for part in chosen if part not in table.types]
            if unknown or not chosen:
                raise _bad(name, f"unknown field {unknown[0]!r}" if unknown else "empty")
            read.fields = chosen
        elif name == "limit":
            read.limit = _positive(name, text)
            if read.limit > resource.limit.max:
                raise _bad(name, f"at most {resource.limit.max}")
        elif name == "page":
            read.page = _positive(name, text)
        elif name == "cursor":
            read.cursor, read.backward = decode_cursor(text) if text else ([], False)
        elif name == "count":
            if text not in ("true", "false"):
                raise _bad(name, "true or false")
            read.count = text == "true"
        else:
            _filter(read, table, name, text)
    # the key breaks ties, ascending (a stable sort: equal items in the order they
    # were created), so that pages are stable
    read.keys.append((resource.key, False))
    never_null = {*resource.required, resource.key, "created_at", "updated_at"}
    if resource.parent is not None:
        never_null.add(resource.parent.field)
    read.nullable = frozenset(column for column, _ in read.keys if column not in never_null)
    if read.cursor is not None:
        _keyset(read, table)
    read.kept = _kept(query)
    return read


def _kept(query: str) -> bytes:
    """The parameters of ``query`` as sent, but ``page`` and ``cursor``."""
    kept = [
        part
        for part in query.split("&")
        if part and unquote_plus(part.partition("=")[0]) not in ("page", "cursor")
    ]
    return "".join(part + "&" for part in kept).encode("latin-1")


def encode_cursor(values: list[Any], backward: bool = False) -> str:
    """The opaque ``cursor`` naming the sort values of a page's last item (or, going
    ``backward``, of the first item of the page after the one it names)."""
    document = {"before": values} if backward else values
    return base64.urlsafe_b64encode(orjson.dumps(document)).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[list[Any], bool]:
    """The sort values of a cursor and whether the page ends before them."""
    try:
        document = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise _bad("cursor", "not a cursor this API gave") from None
    backward = isinstance(document, dict)
    values = document.get("before") if isinstance(document, dict) else document
    if not isinstance(values, list) or not all(
        value is None or isinstance(value, str | int | float) for value in values
    ):
        raise _bad("cursor", "not a cursor this API gave")
    return values, backward


def _keyset(read: ListQuery, table: Table) -> None:
    """Rows after the cursor in the sort order (before it, going backward):
    (a > x) OR (a = x AND b > y) OR ..., NULLs sorting first."""
    if any(name == "page" for name, _ in read.params):
        raise _bad("cursor", "give either 'cursor' or 'page'")
    if not read.cursor:
        return
    if len(read.cursor) != len(read.keys) or not all(
        _sorts_with(table.types[column], value)
        for (column, _), value in zip(read.keys, read.cursor, strict=True)
    ):
        raise _bad("cursor", "the cursor was made for another sort")
    keys = [(column, descending != read.backward) for column, descending in read.keys]
    alternatives = []
    for index, (column, descending) in enumerate(keys):
        parts = []
        for (name, _), value in zip(keys[:index], read.cursor, strict=False):
            if value is None:
                parts.append(f'"{name}" IS NULL')
            else:
                parts.append(f'"{name}" = ?')
                read.args.append(value)
        value, quoted = read.cursor[index], f'"{column}"'
        if value is None:
            if descending:  # (NULLs sort last: none is after this one)
                continue
            parts.append(f"{quoted} IS NOT NULL")
        else:
            later = f"{quoted} {'<' if descending else '>'} ?"
            if descending and column in read.nullable:
                later = f"({later} OR {quoted} IS NULL)"
            parts.append(later)
            read.args.append(value)
        alternatives.append(" AND ".join(parts))
    read.where.append("(" + " OR ".join(f"({each})" for each in alternatives or ["1 = 0"]) + ")")


def _sorts_with(kind: str, value: Any) -> bool:
    """Whether a cursor's ``value`` is one of a column of type ``kind`` (PostgreSQL
    compares a column with values of its own type only)."""
    if value is None:
        return True
    if kind == "string":
        return isinstance(value, str)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _filter(read: ListQuery, table: Table, name: str, text: str) -> None:
    match = _FILTER.fullmatch(name)
    if match is None or match[1] not in table.types:
        raise _bad(name, "unknown query parameter")
    column, op = match[1], match[2] or "eq"
    quoted = f'"{column}"'
    if op == "null":
        if text not in ("true", "false"):
            raise _bad(name, "true or false")
        read.where.append(f"{quoted} IS {'' if text == 'true' else 'NOT '}NULL")
        return
    if table.types[column] not in _SCALARS:
        raise _bad(name, "only [null] filters an array or object field")
    if op == "eq":
        read.where.append(f"{quoted} = ?")
        read.args.append(_value(table, column, text, name))
    elif op in _COMPARE:
        read.where.append(f"{quoted} {_COMPARE[op]} ?")
        read.args.append(_value(table, column, text, name))
    elif op in ("in", "nin"):
        values = [_value(table, column, part, name) for part in text.split(",")]
        marks = ",".join("?" * len(values))
        read.where.append(f"{quoted} {'NOT ' if op == 'nin' else ''}IN ({marks})")
        read.args.extend(values)
    elif op == "like":
        read.where.append(f"{_as_text(table, column)} LIKE ?")
        read.args.append(text)
    elif op == "ilike":
        read.where.append(f"{UNICODE_LOWER}({_as_text(table, column)}) LIKE {UNICODE_LOWER}(?)")
        read.args.append(text)
    else:
        raise _bad(
            name, f"unknown operator {op!r} (ne, lt, lte, gt, gte, in, nin, like, ilike, null)"
        )


def _as_text(table: Table, column: str) -> str:
    """A column as LIKE compares it: a number as its text (SQLite does so by itself,
    PostgreSQL has no LIKE for numbers)."""
    quoted = f'"{column}"'
    return quoted if table.types[column] == "string" else f"CAST({quoted} AS TEXT)"
