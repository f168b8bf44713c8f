"""Destinations by URL scheme: each module imports its driver only when chosen."""

from __future__ import annotations

from quiver.sync.destinations.base import Destination


def open_destination(url: str) -> Destination:
    """``duckdb:///path``, ``sqlite:///path``, ``postgresql://...``, ``jsonl:///dir``,
    ``parquet:///dir`` (three slashes and a relative path, four for an absolute one)."""
    scheme, _, rest = url.partition("://")
    path = rest[1:] if rest.startswith("/") else rest
    if scheme == "duckdb":
        from quiver.sync.destinations.duckdb import DuckDBDestination

        return DuckDBDestination(path)
    if scheme == "sqlite":
        from quiver.sync.destinations.sqlite import SQLiteDestination

        return SQLiteDestination(path)
    if scheme in ("postgresql", "postgres"):
        from quiver.sync.destinations.postgres import PostgresDestination

        return PostgresDestination(url)
    if scheme in ("jsonl", "parquet"):
        from quiver.sync.destinations.files import FileDestination

        return FileDestination(path, scheme)
    raise ValueError(f"unknown destination {url!r}")
