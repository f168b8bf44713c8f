"""json-server 0.17's list parameters read into SQL.

``field=value`` (repeated: any of them), ``field_ne`` (none of them), ``field_gte``,
``field_lte``, ``field_like`` (a case-insensitive regular expression), ``q`` (a
case-insensitive substring of any value), ``_sort=a,b&_order=asc,desc``,
``_page`` with ``_limit`` (10 by default), ``_start`` with ``_end`` or ``_limit``,
``_embed`` and ``_expand``.  A field may be a path into an object (``author.name``).

As in json-server, values compare as the text of the item's value
(``?id=1`` matches the integer 1, ``?done=true`` the boolean), an item without
the field matches no filter, a plain ``field=`` naming no field is ignored, and so
are other parameters starting with ``_``.  Unlike it, a number that cannot be read
(``_page=x``, ``views_gte=x`` on a number) or a broken regular expression is a 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from quiver.resources.errors import InvalidRequest
from quiver.resources.jsonserver.table import EXTRA
from quiver.resources.storage import ANY_TYPE, Table

_OPERATORS = ("_gte", "_lte", "_ne", "_like")
_NUMBERS = ("integer", "number")
_JSON_TEXT = ("array", "object", ANY_TYPE)
#: a field, or a path of keys into one (``author.name``): keys without quotes,
#: backslashes or brackets, which SQLite's quoted JSON path keys cannot hold
_PATH = re.compile(r'[^."\\\[\]]+(?:\.[^."\\\[\]]+)*')
DEFAULT_PAGE_SIZE = 10


@dataclass(slots=True)
class ServerQuery:
    """A json-server list request read into SQL pieces."""

    where: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    #: the arguments of ``order``, after those of ``where``
    order_args: list[Any] = field(default_factory=list)
    page: int | None = None
    limit: int | None = None
    start: int = 0
    end: int | None = None
    embed: list[str] = field(default_factory=list)
    expand: list[str] = field(default_factory=list)
    #: the parameters as sent, for the Link header's URLs
    params: list[tuple[str, str]] = field(default_factory=list)

    def where_sql(self) -> str:
        return " WHERE " + " AND ".join(self.where) if self.where else ""

    @property
    def counted(self) -> bool:
        """json-server sends X-Total-Count when a list is sliced or paged."""
        return self.page is not None or self.limit is not None or self.end is not None

    def window(self) -> tuple[int, int]:
        """(LIMIT, OFFSET) of the rows answered; -1: no limit."""
        if self.page is not None:
            size = self.limit or DEFAULT_PAGE_SIZE
            return size, (self.page - 1) * size
        if self.end is not None:
            return max(self.end - self.start, 0), self.start
        if self.limit is not None:
            return self.limit, self.start
        return -1, 0


def bad(parameter: str, detail: str) -> InvalidRequest:
    return InvalidRequest(
        f"{parameter}: {detail}",
        extensions={"errors": [{"parameter": parameter, "detail": detail}]},
    )


def regexp(pattern: str, value: Any) -> bool:
    """SQLite's ``value REGEXP pattern``: json-server's ``_like``, a case-insensitive
    search (Python's regular expressions; the common syntax is JavaScript's)."""
    return value is not None and _compiled(pattern).search(str(value)) is not None


def lower_text(value: Any) -> Any:
    """SQLite's ``lower`` for every script, not ASCII only: ``q`` ignores case as
    JavaScript's ``toLowerCase`` does."""
    return value.lower() if isinstance(value, str) else value


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _locate(table: Table, path: str) -> tuple[str, str | None, str] | None:
    """Where ``path`` is stored: (column, JSON path into it or None, JSON type);
    a field that is no column is in ``_extra``.  None: a path no item can have."""
    if not _PATH.fullmatch(path):
        return None
    column, _, rest = path.partition(".")
    kind = table.types.get(column)
    if kind is None or column == EXTRA:
        return (EXTRA, _json_path(path), ANY_TYPE) if EXTRA in table.types else None
    if kind in _JSON_TEXT:
        return column, _json_path(rest), kind
    return None if rest else (column, None, kind)


def _json_path(path: str) -> str:
    """SQLite's JSON path of the keys in ``path``: ``a.b`` -> ``$."a"."b"``."""
    return "$" + "".join(f'."{key}"' for key in path.split(".") if key)


def value_sql(table: Table, path: str) -> tuple[str, list[Any]] | None:
    """The SQL value at ``path`` (a column, or a path into JSON text) and its
    arguments; None when no item can have it."""
    found = _locate(table, path)
    if found is None:
        return None
    column, where, _ = found
    if where is None:
        return f'"{column}"', []
    return f'json_extract("{column}", ?)', [where]


def text_sql(table: Table, path: str) -> tuple[str, list[Any]] | None:
    """The value at ``path`` as JavaScript's ``toString`` writes it: what json-server
    compares filters with (``true``, ``3``, ``2.5``)."""
    found = _locate(table, path)
    if found is None:
        return None
    column, where, kind = found
    if where is not None:
        return (
            f"CASE json_type(\"{column}\", ?) WHEN 'true' THEN 'true' "
            f"WHEN 'false' THEN 'false' ELSE CAST(json_extract(\"{column}\", ?) AS TEXT) END",
            [where, where],
        )
    if kind == "boolean":
        return f"CASE \"{column}\" WHEN 1 THEN 'true' WHEN 0 THEN 'false' END", []
    return f'CAST("{column}" AS TEXT)', []


def read_server_query(query: str, table: Table) -> ServerQuery:
    """The list query of ``query`` (the raw query string) on ``table``."""
    read = ServerQuery(params=parse_qsl(query, keep_blank_values=True))
    values: dict[str, list[str]] = {}
    for name, text in read.params:
        values.setdefault(name, []).append(text)
    for name, texts in values.items():
        if name in ("_embed", "_expand"):  # repeated or comma-separated
            names = [part for text in texts for part in text.split(",") if part]
            setattr(read, name[1:], names)
        elif name.startswith("_") or name == "q":
            _control(read, table, name, texts[0])
        else:
            _filter(read, table, name, texts)
    return read


def _control(read: ServerQuery, table: Table, name: str, text: str) -> None:
    if name == "q":
        _search(read, table, text)
    elif name == "_sort":
        orders = dict(enumerate(o.lower() for o in _order_of(read).split(",")))
        for index, key in enumerate(part for part in text.split(",") if part):
            # ``-views`` (json-server 1.0's form) sorts descending too
            path = key.removeprefix("-")
            found = value_sql(table, path)
            if found is None:
                continue  # as json-server: sorting by a field no item has changes nothing
            sql, args = found
            descending = orders.get(index) == "desc" or key.startswith("-")
            read.order.append(f"{sql} {'DESC NULLS FIRST' if descending else 'ASC NULLS LAST'}")
            read.order_args.extend(args)
    elif name == "_page":
        read.page = max(_count(name, text), 1)
    elif name == "_limit":
        read.limit = _count(name, text)
    elif name == "_start":
        read.start = _count(name, text)
    elif name == "_end":
        read.end = _count(name, text)
    # any other parameter starting with "_" (_order read with _sort, jQuery's "_",
    # _delay...) is ignored, as json-server does


def _order_of(read: ServerQuery) -> str:
    return next((text for name, text in read.params if name == "_order"), "")


def _count(name: str, text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise bad(name, f"a whole number, got {text!r}")
    return int(text)


def _search(read: ServerQuery, table: Table, text: str) -> None:
    """``q``: items with any value containing the text, ignoring case."""
    if not text:
        return
    parts = []
    needle = text.lower()
    for column in table.columns:
        if table.types[column] in _JSON_TEXT:
            # every value inside, at any depth (json-server's deepQuery), not the keys
            parts.append(
                f'EXISTS (SELECT 1 FROM json_tree("{column}") WHERE atom IS NOT NULL AND '
                "instr(lower_text(CASE type WHEN 'true' THEN 'true' WHEN 'false' THEN "
                "'false' ELSE CAST(atom AS TEXT) END), ?) > 0)"
            )
            read.args.append(needle)
            continue
        found = text_sql(table, column)
        if found is not None:
            sql, args = found
            parts.append(f"instr(lower_text({sql}), ?) > 0")
            read.args.extend([*args, needle])
    read.where.append("(" + " OR ".join(parts) + ")")


def _filter(read: ServerQuery, table: Table, name: str, texts: list[str]) -> None:
    operator = next((op for op in _OPERATORS if name.endswith(op)), "")
    path = name.removesuffix(operator) if operator else name
    found = text_sql(table, path)
    if found is None:  # a path no item can have (``a.b`` into a string field)
        if operator:
            read.where.append("0")
        return
    text, text_args = found
    if operator in ("", "_ne"):
        marks = ", ".join("?" * len(texts))
        negation = "NOT " if operator == "_ne" else ""
        clause = f"({text}) {negation}IN ({marks})"
        read.args.extend([*text_args, *texts])
        located = _locate(table, path)
        if not operator and located is not None and located[0] == EXTRA:
            # as json-server: a filter on a field no item has is dropped
            clause += (
                f' OR NOT EXISTS (SELECT 1 FROM "{table.name}" '
                f'WHERE json_type("{EXTRA}", ?) IS NOT NULL)'
            )
            read.args.append(located[1])
        read.where.append(f"({clause})")
    elif operator == "_like":
        for pattern in texts:
            try:
                _compiled(pattern)
            except re.error as exc:
                raise bad(name, f"not a regular expression: {exc}") from None
        read.where.append("(" + " OR ".join([f"({text}) REGEXP ?"] * len(texts)) + ")")
        for pattern in texts:
            read.args.extend([*text_args, pattern])
    else:
        _range(read, table, name, path, texts, operator == "_gte")


def _range(
    read: ServerQuery, table: Table, name: str, path: str, texts: list[str], lower: bool
) -> None:
    """``_gte``/``_lte`` as JavaScript's ``<=`` between the parameter and the value:
    a number compares as a number, a string as text."""
    found = _locate(table, path)
    assert found is not None  # the filter found the path
    column, where, kind = found
    value = f'"{column}"' if where is None else f'json_extract("{column}", ?)'
    value_args = [] if where is None else [where]
    comparison = ">=" if lower else "<="
    parts = []
    arguments: list[Any] = []
    for text in texts:
        number = _number(text)
        if where is None and kind in _NUMBERS:
            if number is None:
                raise bad(name, f"not a number: {text!r}")
            parts.append(f"{value} {comparison} ?")
            arguments.extend([number])
        elif where is None:
            parts.append(f"{value} {comparison} ?")
            arguments.extend([text])
        else:
            typed = f'json_type("{column}", ?)'
            parts.append(f"({typed} = 'text' AND {value} {comparison} ?)")
            arguments.extend([where, *value_args, text])
            if number is not None:
                parts.append(f"({typed} IN ('integer', 'real') AND {value} {comparison} ?)")
                arguments.extend([where, *value_args, number])
    read.where.append("(" + " OR ".join(f"({part})" for part in parts) + ")")
    read.args.extend(arguments)


def _number(text: str) -> float | int | None:
    """The number ``text`` writes; as a float beyond SQLite's 64-bit integers."""
    try:
        number = int(text)
    except ValueError:
        pass
    else:
        return number if abs(number) < 2**63 else float(number)
    try:
        return float(text)
    except ValueError:
        return None
