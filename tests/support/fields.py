"""Header field lookups shared by the request and response types of the test helpers."""

from __future__ import annotations


def field_values(fields: list[tuple[str, str]], name: str) -> list[str]:
    """The values of every field called ``name`` (case-insensitive), in order."""
    return [v for n, v in fields if n.lower() == name.lower()]


def field_value(fields: list[tuple[str, str]], name: str) -> str | None:
    """The values of ``name`` joined into one comma-separated value; None when absent."""
    values = field_values(fields, name)
    return ", ".join(values) if values else None
