"""Rendering pages: Jinja2 templates from ``quiver/web/templates``, HTML-escaped.

Every page extends ``base.html`` (header, navigation, main column) and builds its
forms and tables with the macros of ``macros.html``.  Undefined names fail loudly
(``StrictUndefined``) rather than render as blanks.  ``static('quiver.css')`` gives
an asset's URL with a fingerprint of its content, so that it can be cached for a year
and still change with the next release.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_PATH = "/static"
SURFACE_NAMES = {"portal": "Developer portal", "console": "Console"}


class Templates:
    """The pages' Jinja2 environment; one per app (built by :func:`quiver.web.site.mount_pages`)."""

    def __init__(self, version: str) -> None:
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._fingerprints: dict[str, str] = {}
        self.env.globals["static"] = self.static
        self.env.globals["version"] = version

    def static(self, name: str) -> str:
        """The URL of the asset ``name``, fingerprinted by its content."""
        fingerprint = self._fingerprints.get(name)
        if fingerprint is None:
            digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()
            fingerprint = self._fingerprints[name] = digest[:12]
        return f"{STATIC_PATH}/{name}?v={fingerprint}"

    def render(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any],
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """The page ``name`` with ``context``; ``path`` (for the navigation) is added."""
        page = self.env.get_template(name).render({"path": request.url.path, **context})
        return HTMLResponse(page, status, headers=dict(headers or {}))
