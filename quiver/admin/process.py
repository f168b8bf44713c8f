"""Running the admin API: ``run_admin(AdminSettings)`` blocks serving it with uvicorn.

It runs in a process (or thread) of its own, never on a proxy worker's event
loop: the proxy's hot path stays free of ASGI.  Before it listens it refuses to
start when the admin port would be reachable from other machines without TLS,
or when no token could ever pass (none in the store and no
``QUIVER_ADMIN_TOKEN``): an admin port nobody can use, or anybody can read, is
a mistake to point out rather than to run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import uvicorn
from fastapi import FastAPI

from quiver.admin.app import create_app
from quiver.admin.declarations import FileDeclarations
from quiver.admin.gateway import Gateway
from quiver.admin.limit_events import LimitWatcher
from quiver.admin.node_events import NodeWatcher
from quiver.admin.periodic import Periodic
from quiver.calls import CallLog, Ingester
from quiver.config.models import is_loopback, split_address
from quiver.config.plugin_set import PluginSet
from quiver.config.webhooks import WebhookEndpoint
from quiver.store import Store, open_store
from quiver.store.tokens import count_tokens, seed_token
from quiver.webhooks.endpoints import declare_endpoints
from quiver.webhooks.sender import DeliverySettings, Sender

ENV_TOKEN = "QUIVER_ADMIN_TOKEN"
#: the name the token from QUIVER_ADMIN_TOKEN is kept under (and revisions show)
ENV_TOKEN_NAME = "admin-env"
_log = logging.getLogger("quiver.admin")


@dataclass(frozen=True)
class AdminSettings:
    store_url: str  # e.g. "quiver.db" or "postgresql://..."
    listen: str  # "HOST:PORT"; port 0 allowed
    config_path: str | None = None  # file mode: entities read from this file, read-only
    tls_cert: str | None = None  # admin TLS (cert + key files); needed off loopback
    tls_key: str | None = None
    ready_fd: int | None = None  # when set: write b"PORT\n" (the bound port) then close
    calls_dir: str | None = None  # when set: ingest the call spools written there
    run_dir: str | None = None  # when set: serve GET /metrics of the workers writing there
    metrics_public: bool = False  # GET /metrics without a token
    call_log: CallLog = field(default_factory=CallLog)  # what the call log keeps
    #: how webhooks are delivered from this process; None: not from this one
    webhooks: DeliverySettings | None = field(default_factory=DeliverySettings)
    #: endpoints the config file declares, written to the store at start
    webhook_endpoints: tuple[WebhookEndpoint, ...] = ()
    #: where the portal's "Try it" reaches the gateway; None: unknown (no Try it)
    gateway: Gateway | None = None


def check_settings(settings: AdminSettings) -> tuple[str, int]:
    """The host and port to listen on; SystemExit naming admin_listen when unsafe."""
    try:
        host, port = split_address(settings.listen)
    except ValueError as exc:
        raise SystemExit(f"admin_listen {settings.listen!r}: {exc}") from None
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise SystemExit("admin TLS needs both a certificate and its key")
    if not is_loopback(host) and not settings.tls_cert:
        raise SystemExit(
            f"admin_listen {settings.listen} is not a loopback address: the admin API "
            "would be reachable from other machines in clear text; give it a TLS "
            "certificate and key, or listen on 127.0.0.1"
        )
    return host, port


class Pages(Protocol):
    """What adds web pages to the admin app (``quiver.web.site.mount_pages``): the
    pages sit above the admin API, so an entry point hands them in."""

    def __call__(self, app: FastAPI, *, https: bool) -> None: ...


def run_admin(
    settings: AdminSettings, catalog: PluginSet | None = None, pages: Pages | None = None
) -> None:
    """Serve the admin API until SIGINT or SIGTERM, validating declarations against
    ``catalog`` (by default the installed plugins and target types), with the web
    pages ``pages`` mounts beside it."""
    host, port = check_settings(settings)
    if catalog is None:
        from quiver.target_types import default_catalog  # the entry points' catalog

        catalog = default_catalog()
    store = open_store(settings.store_url, catalog)
    ingester: Ingester | None = None
    sender: Sender | None = None
    watchers: list[Periodic] = []
    try:
        _ensure_token(store, settings)
        declare_endpoints(store.engine, settings.webhook_endpoints, now_ms=int(time.time() * 1000))
        source = FileDeclarations(settings.config_path) if settings.config_path else None
        app = create_app(
            source,
            store,
            catalog,
            run_dir=Path(settings.run_dir) if settings.run_dir is not None else None,
            metrics_public=settings.metrics_public,
            gateway=settings.gateway,
        )
        if pages is not None:
            pages(app, https=settings.tls_cert is not None)
        sock = _bind(host, port)
        if settings.calls_dir is not None:
            # the node's one writer of calls, beside uvicorn in this process
            ingester = Ingester(store.engine, Path(settings.calls_dir), settings.call_log)
            ingester.start()
        if settings.webhooks is not None:
            # senders on several nodes share the queue: each claims its own deliveries
            sender = Sender(store.engine, settings.webhooks)
            sender.start()
            if settings.run_dir is not None:
                run_dir = Path(settings.run_dir)
                watchers = [NodeWatcher(run_dir, store.engine), LimitWatcher(run_dir, store.engine)]
                for watcher in watchers:
                    watcher.start()
        server = _Server(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                ssl_certfile=settings.tls_cert,
                ssl_keyfile=settings.tls_key,
                lifespan="off",
                server_header=False,  # (what serves the API is nobody's business)
            ),
            sock,
            settings,
            on_shutdown=[item.stop for item in (*watchers, sender) if item is not None],
            pages=pages is not None,
        )
        server.run(sockets=[sock])
    finally:
        for watcher in watchers:
            watcher.stop()
        if sender is not None:
            sender.stop()
        if ingester is not None:
            ingester.stop()
        store.close()


def _ensure_token(store: Store, settings: AdminSettings) -> None:
    token = os.environ.get(ENV_TOKEN)
    if token:
        seed_token(store, token, ENV_TOKEN_NAME)
    elif count_tokens(store) == 0:
        raise SystemExit(
            f"admin_listen {settings.listen}: the store holds no admin token and "
            f"{ENV_TOKEN} is not set, so no call could be authorized; set {ENV_TOKEN} "
            "to seed the first token"
        )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"admin_listen {host}:{port}: cannot listen ({exc.strerror})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """Says where it listens once it serves: in the log and on ``ready_fd``."""

    def __init__(
        self,
        config: uvicorn.Config,
        sock: socket.socket,
        settings: AdminSettings,
        on_shutdown: list[Callable[[], None]],
        pages: bool = False,
    ) -> None:
        super().__init__(config)
        self._sock = sock
        self._settings = settings
        self._on_shutdown = on_shutdown
        self._pages = pages

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        # uvicorn raises SIGTERM again once it has served, which ends the process before
        # run_admin's cleanup: what must finish its work stops here
        for stop in self._on_shutdown:
            await asyncio.to_thread(stop)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        host, port = self._sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        scheme = "https" if self._settings.tls_cert else "http"
        _log.info("admin API listening on %s://%s:%d", scheme, shown, port)
        if self._pages:
            base = f"{scheme}://{shown}:{port}"
            _log.info("developer portal at %s/portal, operator console at %s/console", base, base)
            gateway = self._settings.gateway
            if gateway is not None:
                _log.info('the portal\'s "Try it" sends requests to the gateway at %s', gateway.url)
            else:
                _log.info("the portal's \"Try it\" is off: the gateway's address is not known")
        if self._settings.ready_fd is not None:
            os.write(self._settings.ready_fd, f"{port}\n".encode())
            os.close(self._settings.ready_fd)
