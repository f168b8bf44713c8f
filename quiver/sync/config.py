"""``sources.yaml``: what ``quiver sync`` pulls and where it loads it.

The shape is dlt's ``rest_api`` config, so a data engineer reads it at sight::

    sources:
      - name: shop
        base_url: https://api.example.com
        auth: {type: bearer, token: "${SHOP_TOKEN}"}
        resources:
          - name: items
            path: /items
            data_selector: data
            paginator: {type: page_number, page_param: page, total_path: total_pages}
            primary_key: id
            write_mode: merge
            incremental: {cursor_path: updated_at, start_param: since,
                          initial_value: "2024-01-01T00:00:00Z"}
    destination: duckdb:///shop.duckdb

A child resource names its parent in a path parameter, as dlt does:
``path: /events/{event_id}/guests`` with
``params: {event_id: {type: resolve, resource: events, field: id}}``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from quiver.client import paginator_from_config
from quiver.config.document import Document, model_issues, read_document
from quiver.errors import ConfigError, ConfigIssue

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
DESTINATIONS = ("duckdb", "postgresql", "postgres", "sqlite", "jsonl", "parquet")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bearer(_Model):
    type: Literal["bearer"] = Field(description="`Authorization: Bearer <token>`")
    token: str = Field(description="the token; use `${VAR}` to keep it out of the file")


class ApiKey(_Model):
    type: Literal["api_key"] = Field(description="a key in a header or a query parameter")
    name: str = Field("Authorization", description="the header or parameter name")
    api_key: str = Field(description="the key; use `${VAR}`")
    location: Literal["header", "query"] = Field("header", description="where the key goes")


class HttpBasic(_Model):
    type: Literal["http_basic"] = Field(description="HTTP Basic authentication")
    username: str = Field(description="user name")
    password: str = Field(description="password; use `${VAR}`")


class OAuth2ClientCredentials(_Model):
    type: Literal["oauth2_client_credentials"] = Field(
        description="an OAuth2 access token for the client's own credentials (RFC 6749 4.4), "
        "renewed before it expires and after a 401"
    )
    access_token_url: str = Field(description="the token endpoint")
    client_id: str = Field(description="the client's id")
    client_secret: str = Field(description="the client's secret; use `${VAR}`")
    scope: str | None = Field(None, description="the scope asked for, space-separated")


class OAuth2RefreshToken(_Model):
    type: Literal["oauth2_refresh_token"] = Field(
        description="an OAuth2 access token from a refresh token (RFC 6749 6)"
    )
    access_token_url: str = Field(description="the token endpoint")
    client_id: str = Field(description="the client's id")
    refresh_token: str = Field(description="the refresh token; use `${VAR}`")
    client_secret: str | None = Field(None, description="the client's secret, if it has one")
    scope: str | None = Field(None, description="the scope asked for, space-separated")


Auth = Annotated[
    Bearer | ApiKey | HttpBasic | OAuth2ClientCredentials | OAuth2RefreshToken,
    Field(discriminator="type"),
]


class Resolve(_Model):
    type: Literal["resolve"] = Field(description="take the value from each parent record")
    resource: str = Field(description="the parent resource (of the same source, listed before)")
    field: str = Field(description="the parent record's field, e.g. `id`")


class Incremental(_Model):
    cursor_path: str = Field(description="the records' field that grows, e.g. `updated_at`")
    start_param: str | None = Field(
        None, description="query parameter that asks for records from a cursor value on"
    )
    initial_value: Any = Field(None, description="the cursor value of the first run")
    lookback: float = Field(
        0,
        ge=0,
        description="ask again for this much before the last cursor value: seconds for "
        "timestamps, units for numbers (late arrivals; best with write_mode merge)",
    )


class Resource(_Model):
    name: str = Field(description="the resource and its table's name")
    path: str = Field(description="the endpoint, relative to the source's base_url")
    method: Literal["GET", "POST"] = Field("GET", description="HTTP method")
    params: dict[str, str | int | float | bool | Resolve] = Field(
        default_factory=dict, description="query parameters; `resolve` ones fill the path"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")
    data_selector: str | None = Field(
        None, description="JSONPath-like path to the records in a response (`data`, `$.a.b`)"
    )
    paginator: dict[str, Any] | str | None = Field(
        None,
        description="how pages follow each other (`{type: page_number, ...}`); "
        "unset: detected from the first response (`auto`)",
    )
    primary_key: str | list[str] | None = Field(None, description="column(s) naming a record")
    write_mode: Literal["append", "replace", "merge"] = Field(
        "append",
        description="append rows, replace the table at the end of the run (atomic swap), "
        "or merge on the primary key",
    )
    incremental: Incremental | None = Field(None, description="load only what changed")
    nested: Literal["flatten", "json"] = Field(
        "flatten",
        description="nested objects as `parent__child` columns, or as JSON text (lists "
        "become child tables either way)",
    )
    table_name: str | None = Field(None, description="the table; default the resource name")

    @property
    def table(self) -> str:
        return self.table_name or self.name

    @property
    def key(self) -> tuple[str, ...]:
        if self.primary_key is None:
            return ()
        return (self.primary_key,) if isinstance(self.primary_key, str) else tuple(self.primary_key)

    @property
    def parent(self) -> tuple[str, Resolve] | None:
        for name, value in self.params.items():
            if isinstance(value, Resolve):
                return name, value
        return None


class Source(_Model):
    name: str = Field(description="the source's name, kept with the state")
    base_url: str = Field(description="what resource paths are relative to")
    auth: Auth | None = Field(None, description="credentials sent with every request")
    headers: dict[str, str] = Field(default_factory=dict, description="headers of every request")
    concurrency: int = Field(
        8, ge=1, le=64, description="pages fetched at once when the paginator allows it"
    )
    transport: Literal["http11", "httpx"] = Field(
        "http11",
        description="http11: the client's lean HTTP/1.1 connections (a third of httpx's CPU "
        "per page); httpx: httpx's own transport",
    )
    resources: list[Resource] = Field(min_length=1, description="the endpoints to load")


class SyncConfig(_Model):
    sources: list[Source] = Field(min_length=1, description="the APIs to pull from")
    destination: str = Field(
        description="duckdb:///file.duckdb, postgresql://..., sqlite:///file.db, "
        "jsonl:///directory or parquet:///directory"
    )
    batch_rows: int = Field(
        1_000_000, ge=1, description="rows committed together (with their state), at most"
    )
    batch_bytes: int = Field(
        32 * 2**20,
        ge=1,
        description="bytes of rows (as Arrow holds them) committed together, at most: "
        "whichever of the two bounds is reached first ends a batch",
    )
    token_file: str | None = Field(
        None,
        description="the private file (mode 0600) each rotated OAuth2 refresh token is kept "
        "in for the next run, relative to the sources file's directory; default "
        "`<sources file>.tokens` beside the sources file",
    )
    _document: Document | None = PrivateAttr(None)  # the file it was read from

    def issue(self, location: str, message: str) -> ConfigIssue:
        """``message`` about the key at ``location`` (``sources[0].resources[1].path``),
        with the file and line of that key when the config was read from a file."""
        document = self._document
        if document is None:
            return ConfigIssue(location, message)
        return ConfigIssue(location, message, document.source, document.line_of(location))

    def token_path(self) -> Path | None:
        """Where rotated refresh tokens are kept (see :mod:`quiver.sync.tokens`); None
        for a config not read from a file that names no ``token_file``."""
        return _token_path(self.token_file, self._document.source if self._document else None)


class Unmatched(LookupError):
    """A key of a resource (``data_selector``, ``incremental.cursor_path``) names
    nothing in what the API answered: the run stops at the key, not at a symptom."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def load_sync_config(path: str | os.PathLike[str]) -> SyncConfig:
    """The sources file at ``path``, validated; ConfigError names each key at fault."""
    document = read_document(path)
    try:
        config = SyncConfig.model_validate(document.data)
    except ValidationError as exc:
        raise ConfigError(model_issues(exc, document, SyncConfig)) from None
    issues = [
        ConfigIssue(where, message, document.source, document.line_of(where))
        for where, message in _cross_checks(config) + _token_file_checks(config, document.source)
    ]
    if issues:
        raise ConfigError(issues)
    config._document = document
    return config


def _cross_checks(config: SyncConfig) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    scheme = config.destination.split(":", 1)[0]
    if scheme not in DESTINATIONS:
        found.append(
            (
                "destination",
                f"unknown destination {scheme!r}; use one of " + ", ".join(DESTINATIONS),
            )
        )
    files = scheme in ("jsonl", "parquet")
    for s, source in enumerate(config.sources):
        seen: set[str] = set()
        for r, resource in enumerate(source.resources):
            where = f"sources[{s}].resources[{r}]"
            if resource.name in seen:
                found.append((f"{where}.name", f"a resource {resource.name!r} is listed before"))
            if resource.write_mode == "merge" and not resource.key:
                found.append((f"{where}.write_mode", "merge needs a primary_key"))
            if resource.write_mode == "merge" and files:
                found.append((f"{where}.write_mode", f"merge needs a database, not {scheme}"))
            try:
                paginator_from_config(resource.paginator)
            except ConfigError as exc:
                found += [(f"{where}.{issue.location}", issue.message) for issue in exc.issues]
            found += _parent_checks(resource, seen, where)
            seen.add(resource.name)
    return found


def _token_path(token_file: str | None, sources_file: str | None) -> Path | None:
    if token_file is not None:
        base = Path(sources_file).parent if sources_file is not None else Path()
        return base / Path(token_file).expanduser()
    if sources_file is None:
        return None
    return Path(sources_file).with_name(Path(sources_file).name + ".tokens")


def _token_file_checks(config: SyncConfig, sources_file: str) -> list[tuple[str, str]]:
    path = _token_path(config.token_file, sources_file)
    if config.token_file is None or path is None:  # (the default is beside the file)
        return []
    if path.is_dir():
        return [("token_file", f"{path} is a directory; name a file in it")]
    if not path.parent.is_dir():
        return [("token_file", f"no directory {path.parent}")]
    if path.exists() and path.samefile(sources_file):
        return [("token_file", "the sources file itself; name another file")]
    return []


def _parent_checks(resource: Resource, seen: set[str], where: str) -> list[tuple[str, str]]:
    found = []
    resolved = [n for n, v in resource.params.items() if isinstance(v, Resolve)]
    for name in _PLACEHOLDER.findall(resource.path):
        if name not in resolved:
            found.append((f"{where}.path", f"{{{name}}} needs a `resolve` param named {name!r}"))
    if len(resolved) > 1:
        found.append((f"{where}.params", "one `resolve` param per resource"))
    parent = resource.parent
    if parent is not None and parent[1].resource not in seen:
        found.append(
            (
                f"{where}.params.{parent[0]}.resource",
                f"no resource {parent[1].resource!r} listed before this one",
            )
        )
    return found
