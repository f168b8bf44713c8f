"""Rendering a page of a surface: the layout's context, and the navigation.

Each surface's router names its navigation in a tuple of :class:`NavItem`; a new page
adds itself there.  :func:`render` fills what ``base.html`` needs (the surface, who
is signed in, the CSRF token of the sign-out form, the navigation) around the page's
own context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from quiver.accounts.sessions import Surface
from quiver.store import Store
from quiver.web.identity import SignedIn
from quiver.web.templates import SURFACE_NAMES


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str

    def current(self, path: str) -> bool:
        """Whether ``path`` is this item's page or one below it."""
        root = self.path.count("/") == 1
        return path == self.path or (not root and path.startswith(self.path + "/"))


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def render(
    request: Request,
    surface: Surface,
    template: str,
    *,
    title: str,
    who: SignedIn | None,
    nav: Sequence[NavItem] = (),
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page ``template`` of ``surface`` in the layout."""
    templates = request.app.state.web.templates
    base = {
        "surface": surface,
        "surface_name": SURFACE_NAMES[surface],
        "title": title,
        "who": who,
        "nav": nav if who is not None else (),
    }
    response: HTMLResponse = templates.render(
        request, template, {**base, **context}, status=status, headers=headers
    )
    return response
