"""Checking an item against its resource's fields, with an RFC 6901 pointer per failure."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from quiver.config.resources import Resource
from quiver.resources.errors import invalid

#: the integers a column holds (SQLite's INTEGER, PostgreSQL's BIGINT)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _pointer(path: list[str | int]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


class ItemSchema:
    """The declared fields of a resource as one JSON Schema, built once per config."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        properties = dict(resource.fields)
        key = properties.get(resource.key)
        if resource.key_type == "given" and key is not None and key["type"] == "string":
            # an empty key would name the collection's own URL
            properties[resource.key] = {**key, "minLength": max(1, key.get("minLength", 0))}
        schema = {"type": "object", "properties": properties}
        self.validator = Draft202012Validator(schema, format_checker=FormatChecker())
        #: a given key is required as any required field is
        given = [resource.key] if resource.key_type == "given" else []
        self.required = [*resource.required, *(n for n in given if n not in resource.required)]
        self.integers = {
            name for name, field in resource.fields.items() if field.get("type") == "integer"
        }
        self.defaults = {
            name: field["default"] for name, field in resource.fields.items() if "default" in field
        }

    def _integers(self, item: dict[str, Any]) -> list[dict[str, str]]:
        """Integers a column cannot hold; an integer field's 12.0 becomes 12 (JSON
        Schema takes it for an integer; a JSON parser reads an integer too large for
        64 bits as a float, so a float past 2^53 is refused as an integer out of range)."""
        errors = []
        for name, value in item.items():
            if isinstance(value, float) and name in self.integers and value.is_integer():
                if abs(value) <= 2**53:  # (beyond, a float is no exact integer)
                    item[name] = value = int(value)
                else:
                    value = INT64_MAX + 1
            if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
                detail = "out of range: a 64-bit integer at most"
                errors.append({"pointer": _pointer([name]), "detail": detail})
        return errors

    def check(self, item: Any) -> dict[str, Any]:
        """``item`` if it is a valid item (fields only), else a 422 listing each failure."""
        if not isinstance(item, dict):
            raise invalid([{"pointer": "", "detail": "an item is a JSON object"}])
        errors = [
            {"pointer": _pointer(list(error.absolute_path)), "detail": error.message}
            for error in self.validator.iter_errors(item)
        ]
        errors += self._integers(item)
        fields = self.resource.fields
        errors += [
            {"pointer": _pointer([name]), "detail": "not a field of this resource"}
            for name in item
            if name not in fields
        ]
        errors += [
            {"pointer": _pointer([name]), "detail": "is required"}
            for name in self.required
            if item.get(name) is None
        ]
        if errors:
            errors.sort(key=lambda error: error["pointer"])
            raise invalid(errors)
        return item
