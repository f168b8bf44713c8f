"""What keeps the pages safe in a browser: response headers, cookies and CSRF checks.

**Headers.**  Every response under the pages' paths carries a Content-Security-Policy
that allows only this origin's own files (``default-src 'self'``: no inline script or
style, no CDN, no external font), refuses framing (``frame-ancestors 'none'`` and
``X-Frame-Options: DENY``), sends the Referer only to this origin and forbids MIME
sniffing.  Pages are ``Cache-Control: no-store``: they hold CSRF tokens and
account details.

**Cookies.**  ``quiver_session`` holds the session id; it is ``HttpOnly`` (no script
reads it), ``SameSite=Strict`` (no other site's page sends it: every flow here is a
same-site navigation) and ``Secure`` when the admin API is served over HTTPS.  Plain
HTTP is allowed only on a loopback address, which browsers treat as a secure context
and which never crosses a network.  Each surface's cookie has the surface's path
(``/portal``, ``/console``), so a portal session is never sent to the console or to
the JSON API.

**CSRF.**  Every form carries a token in a hidden ``csrf`` field: the session's own
secret once signed in; before that (the sign-in and sign-up forms) a random value
also set in the ``quiver_form`` cookie, which the field must match.  Every POST must
also come from this origin: its ``Origin`` header (or, when a browser sends none,
its ``Referer``) must name this site.  Either check failing answers the 403 page.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quiver.accounts.sessions import Surface
from quiver.web.errors import CsrfRefused

SESSION_COOKIE = "quiver_session"
FORM_COOKIE = "quiver_form"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'; object-src 'none'"
)
_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
_REFUSED = (
    "The form came without a valid security token, or from another site. Go back, "
    "reload the page and send the form again."
)


class SecurityHeaders:
    """Adds the headers above to every response under ``prefixes``; ``no-store`` to
    those that set no Cache-Control of their own (the static files set theirs)."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not any(path == p or path.startswith(p + "/") for p in self.prefixes):
            await self.app(scope, receive, send)
            return

        async def headed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS:
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, headed)


def set_cookie(
    request: Request, response: Response, name: str, value: str, surface: Surface, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=f"/{surface}",
        secure=request.app.state.web.https,
        httponly=True,
        samesite="strict",
    )


def clear_cookie(request: Request, response: Response, name: str, surface: Surface) -> None:
    response.delete_cookie(
        name,
        path=f"/{surface}",
        secure=request.app.state.web.https,
        httponly=True,
        samesite="strict",
    )


def form_token(request: Request) -> str:
    """The token of the forms shown before sign-in: the ``quiver_form`` cookie's, or
    a new one (which the page must set, see :func:`keep_form_token`)."""
    sent = request.cookies.get(FORM_COOKIE, "")
    return sent if 32 <= len(sent) <= 64 and sent.isascii() else secrets.token_urlsafe(32)


def keep_form_token(request: Request, response: Response, token: str, surface: Surface) -> None:
    if request.cookies.get(FORM_COOKIE) != token:
        set_cookie(request, response, FORM_COOKIE, token, surface, max_age=2 * 3600)


def check_post(request: Request, sent: str, expected: str | None) -> None:
    """CsrfRefused unless the POST comes from this origin with the expected token."""
    if not _same_origin(request):
        raise CsrfRefused(_REFUSED)
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused(_REFUSED)


def _same_origin(request: Request) -> bool:
    host = request.headers.get("host", "")
    own = f"{request.url.scheme}://{host}".lower()
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower() == own
    referer = request.headers.get("referer")
    if referer is None:
        return False
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}".lower() == own
