"""The admin API (control plane): FastAPI over the config store.

    app = create_app(None, store, catalog)           # entities from the store
    app = create_app(FileDeclarations("quiver.yaml"), store, catalog)  # read-only
    run_admin(AdminSettings(store_url="quiver.db", listen="127.0.0.1:8081"))

The proxy never imports it (an import contract checks this).  Its names load on
first use, so that ``quiver --help`` (which registers ``quiver admin``) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quiver.lazy import loaded_on_use

if TYPE_CHECKING:
    from quiver.admin.app import create_app
    from quiver.admin.declarations import FileDeclarations
    from quiver.admin.process import AdminSettings, run_admin

__all__ = ["AdminSettings", "FileDeclarations", "create_app", "run_admin"]
__getattr__ = loaded_on_use(
    __name__,
    {
        "create_app": "quiver.admin.app",
        "FileDeclarations": "quiver.admin.declarations",
        "AdminSettings": "quiver.admin.process",
        "run_admin": "quiver.admin.process",
    },
)
