"""The portal's "Try it" (``POST /portal/apis/TEAM.NAME/try``): one operation of an
API's reference, sent through the gateway with the developer's API key, and the
answer shown under the operation's form on the API's page.

The form names the operation (one of the API's OpenAPI document), its path
parameters, a query and a body; the key is pasted each time (the store keeps only
its hash).  The path is refused next to its field unless one of the API's routes
takes it (quiver.web.route_paths): the portal sends nothing anywhere else.  The
request goes to the gateway the admin process runs beside (``app.state.gateway``,
quiver.admin.gateway) with the key in the header the route's key-auth reads, and
the gateway authenticates, limits, counts and logs it as any client's request.  The
page shows the answer, or why there is none; it never shows the key again, and the
log line says who tried what, without the key or the query.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from quiver.admin.gateway import Gateway
from quiver.web.errors import BadForm, PageRoute
from quiver.web.forms import FormState, read_form
from quiver.web.identity import PortalUser, SignedIn
from quiver.web.portal_catalog import CatalogApi, listed, reference_of, show_api
from quiver.web.portal_openapi import Operation, Section
from quiver.web.route_paths import Served, canonical, served_by
from quiver.web.security import check_post
from quiver.web.signing import client_address
from quiver.web.tryit import Answer, TryFailed, send

router = APIRouter(route_class=PageRoute, include_in_schema=False)  # (under /portal)
_log = logging.getLogger("quiver.web")
#: the fields a tried form shows again (path parameters too; never the key)
_KEPT = ("query", "body")
_NO_GATEWAY = (
    "Try it is unavailable: this portal does not know where the gateway is "
    "(set portal.gateway_url)."
)


@dataclass
class Tried:
    """The operation just tried, as its form shows it again, and what came back."""

    anchor: str
    form: FormState
    sent: str = ""  # "GET /orders/7?expand=true", once sent
    answer: Answer | None = None
    failure: str | None = None


@router.post("/apis/{name}/try")
async def try_it(request: Request, who: PortalUser, name: str) -> Response:
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), who.csrf)
    api, document = await run_in_threadpool(listed, request, name)
    sections, problem = await run_in_threadpool(reference_of, request, document, api)
    operation = _operation(sections, fields.get("operation", ""))
    kept = [*_KEPT, *(path_field(name) for name in operation.path_names)]
    tried = Tried(operation.anchor, FormState.of(fields, *kept))
    gateway: Gateway | None = request.app.state.gateway
    if gateway is None:
        tried.form.message = _NO_GATEWAY
    else:
        await _try(request, who, api, document, operation, fields, gateway, tried)
    status = 400 if tried.form.errors or tried.form.message else 200
    team = fields.get("team", "")
    return show_api(request, who, api, sections, problem, FormState(), team, status, tried)


def path_field(name: str) -> str:
    """The form field of the path parameter ``name``."""
    return f"path-{name}"


def _operation(sections: list[Section], anchor: str) -> Operation:
    for section in sections:
        for operation in section.operations:
            if operation.anchor == anchor:
                return operation
    raise BadForm("The API's reference has no such operation.")


async def _try(
    request: Request,
    who: SignedIn,
    api: CatalogApi,
    document: dict[str, Any],
    operation: Operation,
    fields: dict[str, str],
    gateway: Gateway,
    tried: Tried,
) -> None:
    """Send the form when it passes its checks (else its errors are on
    ``tried.form``), and keep what came back."""
    checked = _checked(api, document, operation, fields, tried.form)
    if checked is None:
        return
    target, served = checked
    key = fields.get("key", "").strip()
    body = fields.get("body", "").encode() if operation.takes_body else None
    headers = _headers(request, served, key, operation, body)
    tried.sent = f"{operation.method} {target}"
    try:
        tried.answer = await send(gateway, operation.method, target, headers, body, secret=key)
    except TryFailed as exc:
        tried.failure = str(exc)
    outcome = str(tried.answer.status) if tried.answer is not None else "no answer"
    _log.info(
        "Try it by %s: %s %s of API %s, %s",
        who.user.email if who.user is not None else who.name,
        operation.method,
        target.partition("?")[0],  # (not the query: it may hold anything)
        api.reference,
        outcome,
    )


def _checked(
    api: CatalogApi,
    document: dict[str, Any],
    operation: Operation,
    fields: dict[str, str],
    form: FormState,
) -> tuple[str, Served] | None:
    """The target (path and query) to send and the route of the API that takes it;
    None when the form is refused (its errors on ``form``)."""
    errors = form.errors
    path = _path(operation, fields, errors)
    query = _query(fields.get("query", ""), errors)
    key = fields.get("key", "").strip()
    if key and not (key.isascii() and key.isprintable()):
        errors["key"] = "An API key is one line of printable characters, as it was shown."
    if errors:
        return None
    found = canonical(path)
    routes = _routes(document, api)
    served = None if found is None else served_by(document, routes, operation.method, found)
    if served is None:
        refusal = (
            f"{operation.method} {path} is not a path of this API's routes: Try it sends "
            "requests only to them."
        )
        if operation.path_names:
            errors[path_field(operation.path_names[0])] = refusal
        else:
            form.message = refusal
        return None
    if key and not served.key_header:
        errors["key"] = "This API's route reads keys from the query string only, not a header."
        return None
    return path + (f"?{query}" if query else ""), served


def _path(operation: Operation, fields: dict[str, str], errors: dict[str, str]) -> str:
    """The operation's path with each parameter filled in (percent-encoded whole: a
    value never adds a segment)."""
    path = operation.path
    for name in operation.path_names:
        value = fields.get(path_field(name), "").strip()
        if not value:
            errors[path_field(name)] = f"Give the {name} of the path."
        path = path.replace("{" + name + "}", quote(value, safe=""), 1)
    return path


def _query(text: str, errors: dict[str, str]) -> str:
    """The query as sent: ``name=value`` pairs joined by ``&``, encoded again."""
    text = text.strip().removeprefix("?")
    if not text:
        return ""
    if "#" in text:
        errors["query"] = "A query has no '#': write name=value pairs joined by &."
        return ""
    pairs = parse_qsl(text, keep_blank_values=True)
    return urlencode(pairs, quote_via=quote)


def _routes(document: dict[str, Any], api: CatalogApi) -> list[str]:
    items = document.get("apis")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("name") == api.name:
            return [str(route) for route in item.get("routes") or []]
    return []


def _headers(
    request: Request, served: Served, key: str, operation: Operation, body: bytes | None
) -> list[tuple[str, str]]:
    headers = [("Accept", "application/json, */*;q=0.8")]
    if served.host is not None:
        headers.append(("Host", served.host))
    if key:
        headers.append((served.key_header, served.key_prefix + key))
    if body:
        headers.append(("Content-Type", operation.body_type or "application/json"))
    client = client_address(request)
    if client is not None:  # (for an ip-restriction trusting this process as a proxy)
        headers.append(("X-Forwarded-For", client))
    return headers
