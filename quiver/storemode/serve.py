"""``quiver serve`` in store mode, and the admin API beside a config file.

Store mode always runs the master process with its workers (one is enough) and the
admin API in a child process.  On start the master opens the store, seeds a new
one (quiver.storemode.bootstrap), reads the latest revision and serves it.  A store
that cannot be reached at start is not fatal when this node served the store
before: it serves its last good declaration (quiver.storemode.lastgood), says so
loudly, and takes the store's revisions again once it answers.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from quiver.config.models import Config, Listen, Settings
from quiver.errors import StoreError
from quiver.plugins.catalog import Catalog
from quiver.proxy.exclusive import refuse_taken
from quiver.proxy.supervisor import Supervisor, compiles
from quiver.proxy.tls import warn_unverified
from quiver.store import Store, open_store
from quiver.storemode.admin import AdminSidecar, check_admin_listen
from quiver.storemode.bootstrap import ensure_admin_token, seed_demo
from quiver.storemode.lastgood import FILE_NAME, LastGood
from quiver.storemode.source import UNREACHABLE, UNUSABLE, StoreSource, compose, reason
from quiver.storemode.urls import identity, shown, with_connect_timeout

log = logging.getLogger("quiver.storemode")

TOKEN_ENV = "QUIVER_ADMIN_TOKEN"


def serve_store(
    settings: Settings,
    *,
    workers: int,
    run_dir: Path,
    catalog: Catalog,
    takeover: bool,
    calls_dir: Path | None,
) -> int:
    """Serve the store ``settings.store`` names until SIGTERM; the workers spool the
    call log in ``calls_dir`` and the admin sidecar ingests it (None: no call log)."""
    check_admin_listen(settings.admin_listen, settings.admin_tls)
    refuse_taken([*settings.listen, Listen(address=settings.admin_listen)], takeover=takeover)
    url = settings.store
    last_good = LastGood(run_dir / FILE_NAME, identity(url))
    log.info("store mode: config store %s", shown(url))
    store = _open(url, catalog)
    if store is not None:
        if seed_demo(store):
            log.info("new store: revision 1 routes every path to the built-in demo target")
        show_new_token(store)
        revision, declaration = store.effective()
        log.info("serving store revision %d", revision)
    else:
        revision, declaration = _last_good(
            last_good,
            f"the config store {shown(url)} is unreachable",
            "its changes are taken once it answers",
        )
    config, head = compose(declaration, settings, catalog), revision
    if store is not None:
        if compiles(config, catalog):
            last_good.save(revision, declaration)
        else:
            revision, declaration = _last_good(
                last_good,
                f"store revision {head} does not compile (see above)",
                "until a newer revision does",
            )
            config = compose(declaration, settings, catalog)
    warn_unverified(config.targets)
    source = StoreSource(
        url, settings, catalog, last_good, store=store, revision=revision, seen=head
    )
    try:
        return Supervisor(
            config,
            workers,
            run_dir=run_dir,
            catalog=catalog,
            source=source,
            sidecar=AdminSidecar(
                url,
                settings.admin_listen,
                catalog,
                tls=settings.admin_tls,
                calls_dir=str(calls_dir) if calls_dir is not None else None,
                call_log=settings.call_log,
                run_dir=str(run_dir),
                metrics=settings.metrics,
                webhooks=settings.webhooks,
                gateway_url=settings.portal.gateway_url,
            ),
            calls_dir=calls_dir,
            trial_after_handoff=True,
        ).run()
    finally:
        source.close()


def _last_good(last_good: LastGood, why: str, until: str) -> tuple[int, dict[str, Any]]:
    """The node's last good declaration, when ``why`` keeps it from the store's latest
    (said loudly); SystemExit when it has none."""
    kept = last_good.load()
    if kept is None:
        raise SystemExit(
            f"quiver: {why} and this node has no last good config ({last_good.path}) "
            "to serve instead"
        )
    revision, declaration = kept
    log.warning(
        "SERVING THE LAST GOOD CONFIG (store revision %d, kept in %s): %s; %s",
        revision,
        last_good.path,
        why,
        until,
    )
    return revision, declaration


def admin_beside_file(
    config: Config,
    path: str,
    catalog: Catalog,
    *,
    takeover: bool,
    run_dir: Path | None = None,
    calls_dir: Path | None = None,
) -> AdminSidecar:
    """The admin API of file mode (the file's entities read-only; tokens in the store)."""
    check_admin_listen(config.admin_listen, config.admin_tls)
    refuse_taken([Listen(address=config.admin_listen)], takeover=takeover)
    try:
        store = open_store(with_connect_timeout(config.store))
    except UNUSABLE as exc:
        raise SystemExit(
            f"quiver: the admin API keeps its tokens in the store {shown(config.store)}, "
            f"which cannot be opened: {reason(exc)}"
        ) from None
    try:
        show_new_token(store)
    finally:
        store.close()
    return AdminSidecar(
        config.store,
        config.admin_listen,
        catalog,
        config_path=path,
        tls=config.admin_tls,
        calls_dir=str(calls_dir) if calls_dir is not None else None,
        call_log=config.call_log,
        run_dir=str(run_dir) if run_dir is not None else None,
        metrics=config.metrics,
        webhooks=config.webhooks,
        gateway_url=config.portal.gateway_url,
    )


def show_new_token(store: Store) -> None:
    """Give a store without admin tokens one; print a new one once, on stderr."""
    token = ensure_admin_token(store, os.environ.get(TOKEN_ENV) or None)
    if token is not None:
        print(f"admin token (shown once, keep it): {token}", file=sys.stderr, flush=True)


def _open(url: str, catalog: Catalog) -> Store | None:
    """The store at ``url``, or None when it cannot be reached (logged)."""
    try:
        return open_store(with_connect_timeout(url), catalog)
    except UNREACHABLE as exc:
        log.error("config store %s unreachable: %s", shown(url), reason(exc))
        return None
    except StoreError as exc:  # (a schema newer than this code)
        raise SystemExit(f"quiver: config store {shown(url)}: {exc}") from None
