"""Destinations by URL scheme: each module imports its driver only when chosen."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

from quiver.sync.destinations.base import Destination

HIDDEN = "***"


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
    raise ValueError(f"unknown destination {redacted(url)!r}")


def redacted(url: str, text: str | None = None) -> str:
    """``text`` (by default ``url`` itself) with the password of ``url`` as ``***``:
    what messages and logs may show of a destination (a driver's error may quote it)."""
    parts = urlsplit(url)
    secrets = [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    if parts.password:
        secrets += [parts.password, unquote(parts.password)]
    shown = url if text is None else text
    for secret in sorted(secrets, key=len, reverse=True):
        shown = shown.replace(secret, HIDDEN)
    return shown
