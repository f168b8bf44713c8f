"""The admin API as a FastAPI app: ``create_app(declarations, store, catalog)``.

The app holds no global state: the store and the source of declarations are
handed in and kept on ``app.state``.  Endpoints are plain functions (the store is
synchronous), which Starlette runs in its thread pool, so a slow database never
blocks the event loop that serves other admin requests.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

from fastapi import FastAPI

from quiver.admin import (
    ai_analytics,
    analytics,
    apis,
    credentials,
    documents,
    entities,
    members,
    metrics,
    nodes,
    plugins,
    revisions,
    subscriptions,
    teams,
    webhooks,
)
from quiver.admin.auth import has_valid_token
from quiver.admin.declarations import Declarations, FileDeclarations, declarations_for
from quiver.admin.docs import mount_docs
from quiver.admin.events import publish_on_revisions
from quiver.admin.gateway import Gateway
from quiver.admin.openapi import install_openapi
from quiver.admin.problems import install_handlers
from quiver.admin.schemas import Health
from quiver.config.plugin_set import PluginSet
from quiver.store import Store


def create_app(
    declarations: FileDeclarations | Declarations | None,
    store: Store,
    catalog: PluginSet | None = None,
    *,
    run_dir: Path | None = None,
    metrics_public: bool = False,
    gateway: Gateway | None = None,
) -> FastAPI:
    """The admin API over ``store``; entities come from the store when
    ``declarations`` is None, or from a config file (read-only) when it is a
    :class:`FileDeclarations`.  Tokens and teams always live in ``store``.  With the
    node's ``run_dir``, ``GET /metrics`` serves its metrics (``metrics_public``:
    without a token).  ``gateway`` is where the gateway beside it is reached, if
    known (the portal's "Try it" sends requests there)."""
    app = FastAPI(
        title="Quiver admin API",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    publish_on_revisions(store)
    if isinstance(declarations, FileDeclarations) or declarations is None:
        app.state.declarations = declarations_for(declarations, store, catalog or store.catalog)
    else:
        app.state.declarations = declarations
    install_handlers(app, has_valid_token)

    @app.get("/health", response_model=Health, tags=["health"], summary="Liveness (no token)")
    def health() -> Health:
        return Health(status="ok")

    for key in ("targets", "routes", "consumers", "apis"):
        app.include_router(entities.router(key))
    for module in (
        nodes,
        credentials,
        plugins,
        documents,
        revisions,
        subscriptions,
        teams,
        members,
        analytics,
        ai_analytics,
        apis,
        webhooks,
    ):
        app.include_router(module.api)
    app.state.run_dir = run_dir  # where the workers' metrics documents are, if known
    app.state.gateway = gateway
    if run_dir is not None:
        app.include_router(metrics.router(run_dir, public=metrics_public))
    mount_docs(app)
    install_openapi(app, _version())
    return app


def _version() -> str:
    try:
        return package_version("quiver-gateway")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "0"
