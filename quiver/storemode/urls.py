"""Store URLs as the store takes them and as logs may show them."""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, quote, urlencode

from sqlalchemy.engine import make_url

from quiver.config.resources import DEFAULT_DATABASE

#: seconds a PostgreSQL connection attempt may take: the master waits for it
CONNECT_TIMEOUT = 2
#: the PostgreSQL schema of a store-mode node's resource tables (beside the store's)
RESOURCES_SCHEMA = "quiver_resources"
_SEARCH_PATH = re.compile(r"-c\s*search_path=\S*")


def identity(url: str) -> str:
    """What names the store ``url`` across restarts, as logs may show it: an absolute
    file for SQLite (``quiver.db`` in two directories is two stores), the URL
    without its password for PostgreSQL."""
    if is_sqlite(url):
        return os.path.abspath(sqlite_path(url))
    return shown(url)


def shown(url: str) -> str:
    """``url`` without its password, for log lines and messages."""
    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # (not parsable: show only its scheme)
        return url.partition("://")[0] + "://..."


def is_sqlite(url: str) -> bool:
    return "://" not in url or url.lower().startswith("sqlite:")


def sqlite_path(url: str) -> str:
    """The file of a SQLite store URL or path."""
    if "://" not in url:
        return url
    database = make_url(url).database
    return database or ""


def with_connect_timeout(url: str) -> str:
    """A PostgreSQL ``url`` whose connection attempts give up after CONNECT_TIMEOUT
    seconds (unless it says otherwise): a store that does not answer must not hold
    the master up for minutes."""
    if is_sqlite(url) or "connect_timeout=" in url:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}connect_timeout={CONNECT_TIMEOUT}"


def resources_database(url: str) -> str:
    """Where a store-mode node keeps its resources when the declaration names no
    ``resources_db``: ``resources.db`` beside a SQLite store's file, or the
    PostgreSQL store's own database, in the schema :data:`RESOURCES_SCHEMA` (its
    tables never meet the store's)."""
    if is_sqlite(url):
        return os.path.join(os.path.dirname(sqlite_path(url)), DEFAULT_DATABASE)
    base, _, query = url.partition("?")
    params = dict(parse_qsl(query))
    options = _SEARCH_PATH.sub("", params.get("options", "")).strip()
    params["options"] = f"{options} -csearch_path={RESOURCES_SCHEMA}".strip()
    return f"{base}?{urlencode(params, quote_via=quote)}"
