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

from quiver.sync.config import Unmatched

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

    def records(self, document: Any, *, strict: bool = False) -> list[Any]:
        """The records ``document`` holds at the path; ``strict``: a key missing on
        the way is a LookupError (a selector naming nothing loads nothing, silently)."""
        if strict:
            at = document
            for key in self.keys:
                if not isinstance(at, dict) or key not in at:
                    raise self.missing(key, list(at) if isinstance(at, dict) else [])
                at = at[key]
        found = self.value(document)
        if found is None:
            return []
        return found if isinstance(found, list) else [found]

    def arrow_records(self, document: pa.Array) -> pa.Array:
        """The records of parsed documents (one element each) as one Arrow array."""
        value = document
        for key in self.keys:
            there = [f.name for f in value.type] if pa.types.is_struct(value.type) else []
            if key not in there:
                raise self.missing(key, there)
            value = pc.struct_field(value, key)
        if pa.types.is_list(value.type) or pa.types.is_large_list(value.type):
            return pc.list_flatten(value)
        if pa.types.is_null(value.type):
            return pa.array([], pa.struct([]))
        return value.filter(pc.is_valid(value))

    def missing(self, key: str, there: list[str]) -> Unmatched:
        keys = f" (it has {', '.join(map(repr, there))})" if there else ""
        message = f"data_selector {self.path!r}: no key {key!r} in the response{keys}"
        return Unmatched("data_selector", message)
