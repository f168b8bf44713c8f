"""Filling a prompt template: ``{{name}}`` placeholders replaced by the request's values.

A value never changes the template around it: a string goes in JSON-escaped (its
quotes, backslashes and control characters, line breaks included, written as JSON
escapes, with no quotes added), so a value cannot close a quoted passage of the
template or start a line of instructions of its own; a number, boolean, null,
array or object goes in as compact JSON.  A variable the request leaves out (one
the schema does not require) takes its schema's ``default``, else the empty string.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from quiver.config.ai_prompt import PLACEHOLDER


def escaped(value: Any) -> str:
    """``value`` as it goes into a template."""
    text = orjson.dumps(value).decode()
    return text[1:-1] if isinstance(value, str) else text


class Template:
    """One template, compiled once per config."""

    __slots__ = ("defaults", "text")

    def __init__(self, text: str, schema: dict[str, Any]) -> None:
        self.text = text
        properties = schema.get("properties")
        self.defaults: dict[str, Any] = {}
        if isinstance(properties, dict):
            for name, spec in properties.items():
                if isinstance(spec, dict) and "default" in spec:
                    self.defaults[name] = spec["default"]

    def fill(self, variables: dict[str, Any]) -> str:
        def value_of(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return escaped(variables[name])
            if name in self.defaults:
                return escaped(self.defaults[name])
            return ""

        return PLACEHOLDER.sub(value_of, self.text)
