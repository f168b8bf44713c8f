"""Edits of the top-level fields of JSON bodies: the config models the transformers
share for them and ``JsonEdits``, which applies them (see ``transform`` for the order
of the four kinds of edit)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, Field, JsonValue

from quiver.config.base import Strict
from quiver.plugins.transform import Edits, renamed_once

JsonName = Annotated[str, Field(min_length=1)]


def listed_once(names: list[str]) -> list[str]:
    """Refuse names listed twice (compared exactly: JSON member names are case-sensitive)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"'{name}' is listed twice")
        seen.add(name)
    return names


def _writable(value: JsonValue) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int):
        return -(1 << 63) <= value < 1 << 64  # what orjson writes (bool is within)
    if isinstance(value, list):
        return all(_writable(item) for item in value)
    if isinstance(value, dict):
        return all(_writable(item) for item in value.values())
    return True


def check_json_value(value: JsonValue) -> JsonValue:
    """Refuse numbers JSON cannot carry (NaN, infinities; RFC 8259 §6) or that orjson
    cannot write (integers beyond 64 bits)."""
    if not _writable(value):
        raise ValueError(
            f"{value!r} cannot be sent as JSON: numbers must be finite, integers "
            "between -2**63 and 2**64 - 1"
        )
    return value


class JsonNames(Strict):
    json_fields: Annotated[list[JsonName], AfterValidator(listed_once)] = Field(
        default_factory=list,
        alias="json",
        description="Top-level JSON body field names (case-sensitive).",
    )


class JsonRenames(Strict):
    json_fields: Annotated[
        dict[JsonName, JsonName], AfterValidator(renamed_once(fold_case=False))
    ] = Field(
        default_factory=dict,
        alias="json",
        description="Top-level JSON body field names, old to new (case-sensitive).",
    )


class JsonValues(Strict):
    json_fields: dict[JsonName, Annotated[JsonValue, AfterValidator(check_json_value)]] = Field(
        default_factory=dict,
        alias="json",
        description="Top-level JSON body field names to values, any JSON value written in YAML.",
    )


def is_json(content_type: bytes | None) -> bool:
    """Whether a Content-Type names JSON: application/json or a structured syntax
    suffix ``+json`` (RFC 6839 §3.1), whatever its parameters."""
    if content_type is None:
        return False
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


def is_identity(content_encoding: bytes | None) -> bool:
    """Whether a Content-Encoding leaves the body as it is (absent, or "identity")."""
    return content_encoding is None or content_encoding.strip().lower() in (b"", b"identity")


# orjson reads an integer beyond 64 bits as a float, which would change it; a body
# with a run of 20 digits (rare, and maybe only inside a string) is read by the
# standard library instead, with such integers kept as written.
_LONG_DIGITS = re.compile(rb"[0-9]{20}")


def _exact_int(text: str) -> int | orjson.Fragment:
    value = int(text)
    return value if -(1 << 63) <= value < 1 << 64 else orjson.Fragment(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _not_json(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")  # NaN, Infinity: Python's extensions


def _load(body: bytes) -> Any:
    """The JSON value in ``body``; ValueError when it is not valid UTF-8 JSON."""
    if _LONG_DIGITS.search(body) is None:
        return orjson.loads(body)
    return json.loads(
        body.decode(),
        parse_int=_exact_int,
        parse_float=_finite_float,
        parse_constant=_not_json,
    )


@dataclass(frozen=True, slots=True)
class JsonEdits(Edits):
    """Edits of the top-level fields of a JSON object, compiled from a config.

    Names compare exactly.  A field is present when the object has the member,
    whatever its value (null or false included).  A renamed field keeps its place
    and its value, and takes the place of any field already called by the new name.
    """

    remove: tuple[str, ...] = ()
    rename: tuple[tuple[str, str], ...] = ()
    replace: tuple[tuple[str, JsonValue], ...] = ()
    add: tuple[tuple[str, JsonValue], ...] = ()

    @classmethod
    def build(
        cls,
        remove: Iterable[str],
        rename: Mapping[str, str],
        replace: Mapping[str, JsonValue],
        add: Mapping[str, JsonValue],
    ) -> JsonEdits:
        return cls(tuple(remove), tuple(rename.items()), tuple(replace.items()), tuple(add.items()))

    def apply(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        """The edited object (``fields`` itself, changed, or a new one), or None when
        no edit applies.  Values are shared with the config: serialize, don't change."""
        changed = False
        for name in self.remove:
            if name in fields:
                del fields[name]
                changed = True
        for old, new in self.rename:
            if old in fields:
                fields = {new if k == old else k: v for k, v in fields.items() if k != new}
                changed = True
        for name, value in self.replace:
            if name in fields:
                fields[name] = value
                changed = True
        for name, value in self.add:
            if name not in fields:
                fields[name] = value
                changed = True
        return fields if changed else None

    def apply_to_body(self, body: bytes, *, empty_is_object: bool = False) -> bytes | None:
        """``body`` with the edits applied, or None when it stays as it is: no edit
        applies, or it is not a JSON object in UTF-8 (an empty body counts as ``{}``
        with ``empty_is_object``).  The result is compact JSON, in UTF-8."""
        if body:
            try:
                fields = _load(body)
            except (ValueError, RecursionError):
                return None
            if not isinstance(fields, dict):
                return None
        elif empty_is_object:
            fields = {}
        else:
            return None
        edited = self.apply(fields)
        if edited is None:
            return None
        try:
            return orjson.dumps(edited)
        except orjson.JSONEncodeError:  # nested deeper than orjson writes, lone surrogates
            return None
