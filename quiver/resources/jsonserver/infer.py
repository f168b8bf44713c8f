"""A json-server ``db.json`` read into resource declarations.

Each top-level array of objects is a collection: a resource of the ``json-server``
dialect whose fields are inferred from its items (a field holding one JSON type
gets that type; a field with mixed types or nulls gets none, so any JSON value
fits it); fields an item gets later are kept too (:mod:`.table`).  Each
top-level object is a singular document (json-server's ``"profile": {...}``),
served as a whole.  Items keep their ``id``: integers, or
strings when db.json has string ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from quiver.config.resources import Resource

ID = "id"
IdKind = Literal["integer", "string"]
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: paths this mode serves itself, and the prefix of its own tables
_TAKEN = frozenset({"db", "openapi"})
_OWN_PREFIX = "_quiver"


class DbJsonError(ValueError):
    """A db.json this mode cannot serve; the message names the key at fault."""


@dataclass(frozen=True, slots=True)
class Layout:
    """What a db.json declares, in the file's order."""

    resources: list[Resource]
    id_kinds: dict[str, IdKind]
    singulars: list[str]
    #: every top-level key, collections and singulars, as db.json lists them
    order: list[str]


@dataclass(frozen=True, slots=True)
class Seed:
    """A db.json read: its layout and the data to load on first start."""

    layout: Layout
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)


def singular(name: str) -> str:
    """json-server's singular of a collection name, for ``postId`` and ``_expand``
    (``posts`` -> ``post``, ``categories`` -> ``category``); an approximation of
    the ``pluralize`` package covering regular English plurals."""
    if name.endswith("ies") and len(name) > 3:
        return name[:-3] + "y"
    if name.endswith(("sses", "shes", "ches", "xes")):
        return name[:-2]
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


def foreign_key(collection: str) -> str:
    """The field by which items point at an item of ``collection``: ``postId``."""
    return singular(collection) + "Id"


def read_db(document: Any) -> Seed:
    """The seed of a parsed db.json; DbJsonError naming the first key it cannot serve."""
    if not isinstance(document, dict):
        raise DbJsonError("db.json: the top level is an object of collections")
    resources: list[Resource] = []
    id_kinds: dict[str, IdKind] = {}
    items: dict[str, list[dict[str, Any]]] = {}
    documents: dict[str, dict[str, Any]] = {}
    for key, value in document.items():
        _check_name(key)
        if isinstance(value, dict):
            documents[key] = value
        elif isinstance(value, list):
            kind, kept = _with_ids(key, value)
            id_kinds[key] = kind
            items[key] = kept
            resources.append(_resource(key, kept))
        else:
            raise DbJsonError(
                f'db.json: "{key}" is {_kind(value)}: serve arrays of objects or objects'
            )
    layout = Layout(resources, id_kinds, list(documents), list(document))
    return Seed(layout, items, documents)


def _check_name(key: str) -> None:
    if not _NAME.fullmatch(key):
        raise DbJsonError(
            f'db.json: "{key}" cannot be a resource name: lower case letters, digits '
            "and '_' (rename the key)"
        )
    if key in _TAKEN or key.startswith(_OWN_PREFIX):
        raise DbJsonError(f'db.json: "{key}" is a path this mode serves itself (rename the key)')


def _with_ids(key: str, items: list[Any]) -> tuple[IdKind, list[dict[str, Any]]]:
    """The kind of the collection's ids and its items, an id given to each without
    one (the next integer, as json-server does on create)."""
    kinds = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise DbJsonError(f'db.json: "{key}"[{index}] is {_kind(item)}: items are objects')
        if ID in item:
            kinds.add(_kind(item[ID]))
    if kinds - {"an integer", "a string"} or len(kinds) > 1:
        raise DbJsonError(f'db.json: "{key}" ids must be all integers or all strings')
    kind: IdKind = "string" if kinds == {"a string"} else "integer"
    seen: set[Any] = set()
    for index, item in enumerate(items):
        if ID in item and item[ID] in seen:
            raise DbJsonError(f'db.json: "{key}"[{index}] repeats id {item[ID]!r}')
        seen.add(item.get(ID))
    if kind == "string" or all(ID in item for item in items):
        missing = [index for index, item in enumerate(items) if ID not in item]
        if missing:
            raise DbJsonError(f'db.json: "{key}"[{missing[0]}] has no id')
        return kind, list(items)
    top = max((item[ID] for item in items if ID in item), default=0)
    kept = []
    for item in items:
        if ID not in item:
            top += 1
            item = {ID: top, **item}
        kept.append(item)
    return kind, kept


def _resource(key: str, items: list[dict[str, Any]]) -> Resource:
    """The declaration of collection ``key`` with fields inferred from ``items``."""
    types: dict[str, set[str]] = {}
    for item in items:
        for name, value in item.items():
            if name != ID:
                types.setdefault(name, set()).add(_json_type(value))
    # a name that cannot be a column (``first-name``, or ``Name`` beside ``name``:
    # SQLite's column names ignore case) is kept untyped with the undeclared fields
    folded: set[str] = set()
    fields: dict[str, dict[str, Any]] = {}
    for name, seen in types.items():
        if _FIELD.fullmatch(name) and name.lower() not in folded:
            folded.add(name.lower())
            fields[name] = _schema(seen)
    return Resource.model_validate({"name": key, "dialect": "json-server", "fields": fields})


def _schema(seen: set[str]) -> dict[str, Any]:
    """One JSON type for a field holding only it; integers and other numbers make a
    number; nulls or mixed types: no type (any value)."""
    if seen == {"integer", "number"}:
        seen = {"number"}
    if len(seen) == 1 and "null" not in seen:
        return {"type": next(iter(seen))}
    return {}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _kind(value: Any) -> str:
    kinds = {"integer": "an integer", "array": "an array", "object": "an object"}
    kind = _json_type(value)
    return kinds.get(kind, "null" if kind == "null" else f"a {kind}")
