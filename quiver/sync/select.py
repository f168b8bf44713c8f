"""JSONPath-like selectors: ``data``, ``$.data.items``, ``results[*]``, ``$``.

A selector is a chain of keys; ``$`` (the document) and ``[*]`` (every element) are
accepted for familiarity with JSONPath and dlt's ``data_selector`` but change nothing,
since a list found at the end of the chain is what holds the records either way.
The same selector reads a parsed document (for paginators) and an Arrow value (for
the records, which never become Python objects).
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

_KEY = re.compile(r"[^.\[\]]+")


class Selector:
    def __init__(self, path: str | None) -> None:
        text = (path or "").strip()
        text = text.removeprefix("$").replace("[*]", "")
        self.keys = tuple(_KEY.findall(text))
        self.path = path or "$"

    def value(self, document: Any) -> Any:
        """What the path reaches in ``document``; None when a key is missing."""
        for key in self.keys:
            if not isinstance(document, dict):
                return None
            document = document.get(key)
        return document

    def records(self, document: Any) -> list[Any]:
        found = self.value(document)
        if found is None:
            return []
        return found if isinstance(found, list) else [found]

    def arrow_records(self, document: pa.Array) -> pa.Array:
        """The records of parsed documents (one element each) as one Arrow array."""
        value = document
        for key in self.keys:
            if not pa.types.is_struct(value.type):
                raise LookupError(f"data_selector {self.path!r}: no key {key!r} in the response")
            value = pc.struct_field(value, key)
        if pa.types.is_list(value.type) or pa.types.is_large_list(value.type):
            return pc.list_flatten(value)
        if pa.types.is_null(value.type):
            return pa.array([], pa.struct([]))
        return value.filter(pc.is_valid(value))
