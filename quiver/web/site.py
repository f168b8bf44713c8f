"""The portal and the console on the admin API's app: ``mount_pages(app, https=...)``.

The pages sit above the admin API (they may use its guards and its logic), so the
admin API does not import them: an entry point hands :func:`mount_pages` to
:func:`quiver.admin.run_admin`, which calls it on the app it serves::

    app = create_app(None, store, catalog)
    mount_pages(app, https=False)     # /portal, /console and their /static files

``https`` says whether the app is served over TLS, which makes the cookies ``Secure``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

from quiver import __version__
from quiver.web import console, portal
from quiver.web.errors import install_error_pages
from quiver.web.security import SecurityHeaders
from quiver.web.templates import STATIC_DIR, STATIC_PATH, Templates

#: the paths the pages answer (with HTML, and the security headers)
PREFIXES = ("/portal", "/console", STATIC_PATH)
#: assets are addressed by a fingerprint of their content (``?v=``): a year is safe
_STATIC_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class WebSite:
    """What the pages share, on ``app.state.web``."""

    templates: Templates
    https: bool


def mount_pages(app: FastAPI, *, https: bool = False) -> None:
    """Serve the developer portal and the operator console from ``app``."""
    app.state.web = WebSite(Templates(__version__), https)
    app.include_router(portal.router)
    app.include_router(console.router)
    app.mount(STATIC_PATH, _Assets(directory=str(STATIC_DIR)), name="web-static")
    install_error_pages(app, PREFIXES[:2])
    app.add_middleware(SecurityHeaders, prefixes=PREFIXES)


class _Assets(StaticFiles):
    """The bundled CSS and images, cached by browsers for a year."""

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = _STATIC_CACHE
        return response
