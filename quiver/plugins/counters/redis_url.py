"""Where the ``redis`` counter store finds Redis: URL forms, and the client for each.

==============================================================  ============================
URL                                                             client
==============================================================  ============================
``redis://[[user]:password@]host[:port][/db]``                  one server
``rediss://...``                                                the same over TLS
``unix://[[user]:password@]/path/to.sock[?db=N]``               one server, Unix socket
``redis+cluster://[[user]:password@]host:port[,host:port]``     Redis Cluster (seed nodes)
``redis+sentinel://[[user]:password@]host:port[,host:port]/``   the master Sentinel names
``service_name[/db]``
==============================================================  ============================

``rediss+cluster://`` and ``rediss+sentinel://`` are the TLS forms.  The credentials
are those of the data nodes; Sentinels that want their own take
``?sentinel_username=...&sentinel_password=...``.  TLS forms accept
``?ssl_cert_reqs=none|optional|required`` and ``?ssl_ca_certs=/path/ca.pem``.

A password never appears in a message: :func:`masked` is the URL to show, and
:func:`reason` says in one line what a client's exception means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

Kind = Literal["server", "unix", "cluster", "sentinel"]

_SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis": ("server", False),
    "rediss": ("server", True),
    "unix": ("unix", False),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}
_TLS_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs")
_OPTIONS: dict[Kind, tuple[str, ...]] = {
    "server": (),
    "unix": ("db",),
    "cluster": (),
    "sentinel": ("sentinel_username", "sentinel_password"),
}
_DEFAULT_PORT = 6379
_SENTINEL_PORT = 26379
MASK = "***"


@dataclass(frozen=True)
class RedisAddress:
    """A parsed Redis URL."""

    kind: Kind
    tls: bool = False
    nodes: tuple[tuple[str, int], ...] = ()  # servers, seeds or Sentinels
    path: str = ""  # unix socket
    db: int = 0
    service: str = ""  # sentinel
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, str] = field(default_factory=dict, repr=False)


def masked(url: str) -> str:
    """``url`` with its password (and any password option) replaced by ``***``, even
    when the URL is malformed (a ``/`` or ``@`` left unencoded in the password)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    rest, qmark, query = rest.partition("?")
    at = rest.rfind("@")
    userinfo = rest[:at] if at >= 0 else ""
    if ":" in userinfo:
        rest = userinfo.partition(":")[0] + ":" + MASK + rest[at:]
    if query:
        query = "&".join(
            f"{name}={MASK}" if "password" in name else f"{name}{eq}{value}"
            for name, eq, value in (item.partition("=") for item in query.split("&"))
        )
    return f"{scheme}://{rest}{qmark}{query}"


def parse(url: str) -> RedisAddress:
    """The address ``url`` names; ValueError (without the password) when malformed."""
    try:
        return _parse(url)
    except ValueError as exc:
        raise ValueError(f"{masked(url)}: {exc}") from None


def _parse(url: str) -> RedisAddress:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise ValueError(f"unknown scheme; use one of {', '.join(_SCHEMES)}")
    kind, tls = _SCHEMES[scheme.lower()]
    rest, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    allowed = _OPTIONS[kind] + (_TLS_OPTIONS if tls else ())
    for name in options:
        if name not in allowed:
            raise ValueError(
                f"unknown option {name!r}" + (f"; known: {', '.join(allowed)}" if allowed else "")
            )
    if kind == "unix":  # the path may hold an "@"; credentials come before the first "/"
        netloc, _, path = rest.partition("/")
        userinfo, at, hosts = netloc.rpartition("@")
    else:  # hosts and paths never hold an "@": a password may (unencoded "/" too)
        userinfo, at, rest = rest.rpartition("@")
        hosts, _, path = rest.partition("/")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    common: dict[str, Any] = {"tls": tls, "username": username, "password": password}
    if kind == "unix":
        if hosts or not path:
            raise ValueError("a unix URL names a socket path: unix:///path/to/redis.sock")
        db = _number(options.pop("db", "0"), "db")
        return RedisAddress(kind, path="/" + unquote(path), db=db, options=options, **common)
    default = _SENTINEL_PORT if kind == "sentinel" else _DEFAULT_PORT
    nodes = tuple(_node(item, default) for item in hosts.split(","))
    parts = [unquote(part) for part in path.split("/")] if path else []
    if kind == "sentinel":
        if not parts or not parts[0]:
            raise ValueError("a sentinel URL names the service: redis+sentinel://host:port/name")
        service, parts = parts[0], parts[1:]
        db = _db(parts)
        return RedisAddress(kind, nodes=nodes, db=db, service=service, options=options, **common)
    db = _db(parts)
    if kind == "server" and len(nodes) > 1:
        raise ValueError("several hosts: use redis+cluster:// or redis+sentinel://")
    if kind == "cluster" and db:
        raise ValueError("Redis Cluster has database 0 only")
    return RedisAddress(kind, nodes=nodes, db=db, options=options, **common)


def _db(parts: list[str]) -> int:
    parts = [part for part in parts if part]
    if len(parts) > 1:
        raise ValueError("the path is /db, a database number")
    return _number(parts[0], "db") if parts else 0


def _number(text: str, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{what} must be a number, not {text!r}")
    return int(text)


def _node(text: str, default: int) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:port
        host, bracket, port = text[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise ValueError(f"bad address {text!r}")
        port = port[1:]
    else:
        host, _, port = text.partition(":")
    if not host:
        raise ValueError("a host is missing" if not text else f"bad address {text!r}")
    number = _number(port, "port") if port else default
    if not 0 < number < 65536:
        raise ValueError(f"port {number} is out of range")
    return host, number


_ADDRESS = re.compile(r"\bhost=([^,)>]+).*?\bport=(\d+)")


def reason(exc: BaseException) -> str:
    """``exc`` in one line for a log: its class and message, where each redis-py
    client named in it (a Sentinel that did not answer, in ``MasterNotFoundError``:
    a repr of over a thousand characters) is shown as its address."""
    text = str(exc)
    parts = []
    at = 0
    while (begin := text.find("<redis.", at)) >= 0:
        depth, end = 0, len(text) - 1
        for index in range(begin, len(text)):  # to the ">" that closes this "<"
            depth += {"<": 1, ">": -1}.get(text[index], 0)
            if depth == 0:
                end = index
                break
        found = _ADDRESS.search(text, begin, end)
        parts += [text[at:begin], f"{found[1]}:{found[2]}" if found else "redis"]
        at = end + 1
    text = " ".join(("".join(parts) + text[at:]).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def connect(address: RedisAddress, timeout: float) -> tuple[Any, list[Any]]:
    """A redis-py asyncio client for ``address`` whose every socket operation gives up
    after ``timeout`` seconds and is never retried (the store fails fast instead), and
    the other clients to close with it (those of the Sentinels)."""
    from redis.asyncio import Redis
    from redis.asyncio.cluster import ClusterNode, RedisCluster
    from redis.asyncio.retry import Retry
    from redis.asyncio.sentinel import Sentinel
    from redis.backoff import NoBackoff

    common: dict[str, Any] = {
        "username": address.username,
        "password": address.password,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }
    tls: dict[str, Any] = {}
    if address.tls:
        tls = {"ssl": True, "ssl_cert_reqs": address.options.get("ssl_cert_reqs", "required")}
        if "ssl_ca_certs" in address.options:
            tls["ssl_ca_certs"] = address.options["ssl_ca_certs"]
    if address.kind == "unix":
        return Redis(unix_socket_path=address.path, db=address.db, **common), []
    if address.kind == "server":
        [(host, port)] = address.nodes
        return Redis(host=host, port=port, db=address.db, **common, **tls), []
    if address.kind == "cluster":
        seeds = [ClusterNode(host, port) for host, port in address.nodes]
        return RedisCluster(startup_nodes=seeds, **common, **tls), []
    sentinel_kwargs = {
        **common,
        **tls,
        "username": address.options.get("sentinel_username"),
        "password": address.options.get("sentinel_password"),
    }
    sentinel = Sentinel(list(address.nodes), sentinel_kwargs=sentinel_kwargs)
    master = sentinel.master_for(address.service, db=address.db, **common, **tls)
    return master, list(sentinel.sentinels)
