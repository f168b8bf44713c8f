"""An item's key: how it is made, stored, read from a path and described.

``auto`` keys are integers the store assigns (``INTEGER PRIMARY KEY AUTOINCREMENT``:
never reused), ``uuid`` keys random UUIDs the store assigns (version 4, the
canonical lower-case text), ``given`` keys one of the fields, sent by the client.
A path segment that cannot be a key of the kind is no item: the target answers 404.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from quiver.config.resources import KeyType, Resource

_UUID = re.compile(rb"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_UUID_TEXT = re.compile(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}")
#: the integers SQLite stores (64 bits): a longer segment is no key
_MAX_DIGITS = 18


@dataclass(frozen=True, slots=True)
class Key:
    """A resource's key: its name, kind and JSON type (integer or string)."""

    name: str
    type: KeyType
    json_type: str

    @classmethod
    def of(cls, resource: Resource) -> Key:
        kind = resource.key_type
        json_type = "string" if kind == "uuid" else "integer"
        if kind == "given":
            json_type = resource.fields[resource.key]["type"]
        return cls(resource.key, kind, json_type)

    @property
    def affinity(self) -> str:
        """The column type of the key, and of a child's column naming it."""
        return "INTEGER" if self.json_type == "integer" else "TEXT"

    def column_sql(self) -> str:
        if self.type == "auto":
            return f'"{self.name}" INTEGER PRIMARY KEY AUTOINCREMENT'
        # NOT NULL: SQLite lets a NULL into any other PRIMARY KEY column
        return f'"{self.name}" {self.affinity} PRIMARY KEY NOT NULL'

    def parse(self, segment: bytes) -> int | str:
        """The key a path segment names; ValueError when it cannot be one."""
        if self.json_type == "integer":
            digits = segment[1:] if segment[:1] == b"-" else segment
            if not digits.isdigit() or len(digits) > _MAX_DIGITS:
                raise ValueError("not an integer key")
            return int(segment)
        if self.type == "uuid":
            if not _UUID.fullmatch(segment):
                raise ValueError("not a UUID")
            return segment.decode("ascii").lower()
        # percent-decoded as RFC 3986 §2.1 has it; bytes that are not UTF-8 name nothing
        return unquote_to_bytes(segment).decode("utf-8")

    def segment(self, value: int | str) -> bytes:
        """The path segment naming ``value`` (for Location)."""
        return quote(str(value), safe="").encode("ascii")

    def new(self) -> str | None:
        """A new key the store makes, or None when SQLite or the client gives it."""
        return str(uuid.uuid4()) if self.type == "uuid" else None

    def fits(self, value: Any) -> bool:
        """Whether ``value`` (from a file being loaded) can be a key of this kind."""
        if self.type == "uuid":
            return isinstance(value, str) and _UUID_TEXT.fullmatch(value) is not None
        if self.json_type == "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, str)

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the key as a path parameter."""
        if self.type == "uuid":
            return {"type": "string", "format": "uuid"}
        return {"type": self.json_type}
