"""JSON Schemas compiled once, and what they find wrong as violations with JSON pointers.

Validation is python-jsonschema's; this module picks the validator class, refuses
schemas it could not use (invalid, or referring outside themselves), and words each
error as a violation: where (``in`` and an RFC 6901 ``pointer``) and what rule failed.
Messages never quote the value found, so no credential sent in a header, cookie or
body field comes back in an error; the pointer and the rule say enough.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal, TypedDict

from jsonschema import Draft202012Validator, FormatChecker, SchemaError, validators
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

from quiver.plugins.request_validator.formats import format_checker

Location = Literal["body", "query", "header", "path", "cookie"]

#: at most this many violations are listed in one answer
MAX_VIOLATIONS = 100

# One violation, as listed in the problem document's "violations" member.
Violation = TypedDict("Violation", {"in": Location, "pointer": str, "message": str})


class SchemaProblem(ValueError):
    """A schema the plugin cannot use; the message says where and why."""


def violation(location: Location, pointer: str, message: str) -> Violation:
    return {"in": location, "pointer": pointer, "message": message}


def pointer(parts: Iterable[str | int]) -> str:
    """The RFC 6901 JSON pointer made of ``parts`` ("" for the whole document)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def lookup(document: Any, ref: str) -> Any:
    """The value at a local reference such as ``#/components/schemas/Item``."""
    if not ref.startswith("#"):
        raise SchemaProblem(f"{ref!r}: only references inside the document ('#/...') are used")
    node = document
    fragment = ref[1:]
    if fragment and not fragment.startswith("/"):
        raise SchemaProblem(f"{ref!r}: name a JSON pointer ('#/...'), not an anchor")
    for raw in fragment.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise SchemaProblem(f"{ref!r} refers to nothing in the document")
    return node


#: keywords whose values are data (examples, defaults), never schemas
DATA_KEYS = frozenset({"example", "examples", "default", "enum", "const"})
#: keywords whose values map names to schemas (or to other objects), where a name
#: such as "default" is a name and not a keyword
NAME_MAPS = frozenset(
    {"properties", "patternProperties", "definitions", "$defs", "dependentSchemas"}
    | {"schemas", "parameters", "requestBodies", "responses", "headers", "content", "paths"}
)


def references(node: Any, names: bool = False) -> Iterator[str]:
    """Every ``$ref`` string in ``node``, skipping example and default values."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not names:
            yield ref
        for key, value in node.items():
            if names or key not in DATA_KEYS:
                yield from references(value, not names and key in NAME_MAPS)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def compile_schema(
    schema: Any,
    *,
    where: str,
    cls: type[Validator] | None = None,
    registry: Registry[Any] | None = None,
    checker: FormatChecker | None = None,
) -> Validator:
    """A validator for ``schema``, refusing an invalid one (SchemaProblem names ``where``).

    ``cls`` defaults to the draft the schema's ``$schema`` names, else 2020-12.  Without
    a ``registry`` the schema stands alone: its ``$ref`` must point inside it, since no
    schema is ever fetched from elsewhere.
    """
    if cls is None:
        if not isinstance(schema, dict | bool):
            raise SchemaProblem(f"{where}: a schema is a mapping (or true/false)")
        cls = validators.validator_for(schema, default=Draft202012Validator)
    check_schema(schema, where, cls)
    if registry is None:
        for ref in references(schema):
            try:
                lookup(schema, ref)
            except SchemaProblem as exc:
                raise SchemaProblem(f"{where}: {exc}") from None
    checker = checker if checker is not None else format_checker()
    if registry is None:
        return cls(schema, format_checker=checker)
    return cls(schema, registry=registry, format_checker=checker)


def check_schema(schema: Any, where: str, cls: type[Validator]) -> None:
    """Refuse (SchemaProblem) what is no valid schema for ``cls``'s draft."""
    if not isinstance(schema, dict | bool):
        raise SchemaProblem(f"{where}: a schema is a mapping (or true/false)")
    try:
        cls.check_schema(schema)  # type: ignore[arg-type]  # (true and false are schemas)
    except SchemaError as exc:
        at = pointer(exc.path)
        raise SchemaProblem(f"{where}{at}: not a valid JSON Schema: {exc.message}") from None


def violations(validator: Validator, instance: Any, location: Location) -> list[Violation]:
    """What ``instance`` breaks of the schema, in the order the validator finds it."""
    found: list[Violation] = []
    try:
        for error in validator.iter_errors(instance):
            found.extend(_describe(error, location))
    except RecursionError:
        found.append(violation(location, "", "is nested too deeply to be validated"))
    except Unresolvable as exc:  # refused at config load; kept as a violation if it slips by
        found.append(violation(location, "", f"its schema has a broken reference: {exc}"))
    return unique(found)


def unique(found: list[Violation]) -> list[Violation]:
    """``found`` without repeats, first occurrence kept."""
    seen: set[tuple[str, str, str]] = set()
    kept: list[Violation] = []
    for v in found:
        key = (v["in"], v["pointer"], v["message"])
        if key not in seen:
            seen.add(key)
            kept.append(v)
    return kept


def _describe(error: ValidationError, location: Location) -> list[Violation]:
    path = list(error.absolute_path)
    where = pointer(path)
    keyword = error.validator
    instance = error.instance
    if keyword == "required" and isinstance(instance, dict):
        # one violation per missing member, pointing where it should be
        names = [n for n in error.validator_value if n not in instance]  # type: ignore[union-attr]
        return [violation(location, pointer([*path, n]), "is required") for n in names]
    if keyword == "additionalProperties" and isinstance(instance, dict):
        extras = _unexpected(instance, error.schema)
        return [violation(location, pointer([*path, n]), "is not allowed") for n in extras]
    return [violation(location, where, _message(error))]


def _unexpected(instance: Mapping[str, Any], schema: Any) -> list[str]:
    if not isinstance(schema, dict):
        return list(instance)
    declared = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        name
        for name in instance
        if name not in declared and not any(re.search(p, name) for p in patterns)
    ]


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _bound(error: ValidationError, word: str, exclusive_word: str) -> str:
    # draft 4 (OpenAPI 3.0): exclusiveMinimum/-Maximum are booleans beside the bound
    schema = error.schema if isinstance(error.schema, dict) else {}
    exclusive = schema.get("exclusive" + error.validator.capitalize()) is True  # type: ignore[union-attr]
    return f"must be {exclusive_word if exclusive else word} {_shown(error.validator_value)}"


_MESSAGES: dict[str, Callable[[ValidationError], str]] = {
    "type": lambda e: "must be of type " + " or ".join(_types(e.validator_value)),
    "enum": lambda e: "must be one of " + _shown(e.validator_value),
    "const": lambda e: "must be " + _shown(e.validator_value),
    "minimum": lambda e: _bound(e, ">=", ">"),
    "maximum": lambda e: _bound(e, "<=", "<"),
    "exclusiveMinimum": lambda e: f"must be > {_shown(e.validator_value)}",
    "exclusiveMaximum": lambda e: f"must be < {_shown(e.validator_value)}",
    "multipleOf": lambda e: f"must be a multiple of {_shown(e.validator_value)}",
    "minLength": lambda e: f"must be at least {e.validator_value} characters long",
    "maxLength": lambda e: f"must be at most {e.validator_value} characters long",
    "pattern": lambda e: f"must match the pattern {_shown(e.validator_value)}",
    "format": lambda e: f"must be a valid {e.validator_value}",
    "minItems": lambda e: f"must have at least {e.validator_value} items",
    "maxItems": lambda e: f"must have at most {e.validator_value} items",
    "uniqueItems": lambda e: "must not contain the same item twice",
    "minProperties": lambda e: f"must have at least {e.validator_value} members",
    "maxProperties": lambda e: f"must have at most {e.validator_value} members",
    "anyOf": lambda e: "must match at least one of the schemas in 'anyOf'",
    "oneOf": lambda e: "must match exactly one of the schemas in 'oneOf'",
    "not": lambda e: "must not match the schema in 'not'",
    "contains": lambda e: "must contain an item matching the schema in 'contains'",
    "items": lambda e: "has more items than allowed",  # only "items: false" fails here
    "additionalItems": lambda e: "has more items than allowed",
    "unevaluatedProperties": lambda e: "has members no schema allows",
    "unevaluatedItems": lambda e: "has items no schema allows",
    "dependentRequired": lambda e: "lacks members that members present require",
    "dependencies": lambda e: "lacks members that members present require",
}


def _types(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(t) for t in value]


def _message(error: ValidationError) -> str:
    keyword = error.validator
    if keyword is None:  # the schema "false"
        return "is not allowed"
    describe = _MESSAGES.get(str(keyword))
    return describe(error) if describe is not None else f"does not satisfy {keyword!r}"
