"""``GET /apis/{name}/openapi.json``: the OpenAPI document of an API product.

The document is where the API's ``openapi`` says (the loader of ``mcp.openapi``,
:class:`~quiver.config.mcp_routes.OpenAPISource`): inline, a file, an
``http(s)://`` URL, or ``target://NAME/path`` (fetched from the target's first
node).  Without ``openapi`` it is the first route's target's ``/openapi.json``, or,
for resources and prompt APIs, the document the gateway generates for them, read
from the gateway beside this process (``app.state.gateway``,
:mod:`quiver.admin.gateway`); an admin process that knows no gateway answers 404,
saying where the gateway serves it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, Request
from pydantic import ValidationError

from quiver.admin.auth import Reader
from quiver.admin.gateway import Gateway
from quiver.admin.problems import ApiProblem
from quiver.admin.responses import problems
from quiver.admin.writes import find, not_found
from quiver.config.mcp_routes import (
    OpenAPISource,
    parse_openapi,
    read_openapi_file,
    route_prefix,
)
from quiver.config.resources import OPENAPI_PATH, RESOURCE_PREFIX

api = APIRouter(tags=["apis"])

_TIMEOUT = 10.0
_MAX = 8 << 20


@api.get(
    "/apis/{name}/openapi.json",
    responses=problems(),
    summary="The API's OpenAPI document",
)
def openapi_document(access: Reader, name: str, request: Request) -> Any:
    document = access.declarations.read(access.team).document
    found = find(document, "apis", name)
    if found is None:
        raise not_found("api", name, access.team)
    source = openapi_source(document, found[1])
    if source is None:
        raise _none(f"the API {name!r} has no OpenAPI document")
    try:
        return load_openapi(document, source, request.app.state.gateway)
    except ValueError as error:
        raise _none(f"the API {name!r} has no usable OpenAPI document: {error}") from None


def openapi_source(document: dict[str, Any], item: dict[str, Any]) -> OpenAPISource | None:
    """Where the OpenAPI document of the API ``item`` of ``document`` is, or None."""
    written = item.get("openapi")
    if written is not None:
        try:
            return OpenAPISource.model_validate(written)
        except ValidationError:
            return None
    routes = item.get("routes") or []
    if not routes:
        return None
    found = find(document, "routes", routes[0])
    if found is None:  # a resource's route, made from `resources`
        resource = str(routes[0]).startswith(RESOURCE_PREFIX) and document.get("resources")
        return OpenAPISource(path=OPENAPI_PATH) if resource else None
    route = found[1]
    prompt = isinstance(route.get("ai"), dict) and route["ai"].get("prompt")
    prefix = route_prefix([p for p in route.get("paths") or [] if isinstance(p, str)])
    if prompt and prefix is not None:  # a prompt API documents itself
        return OpenAPISource(path=prefix.rstrip("/") + "/openapi.json")
    target = route.get("target")
    return OpenAPISource(url=f"target://{target}/openapi.json") if target else None


def load_openapi(document: dict[str, Any], source: OpenAPISource, gateway: Gateway | None) -> Any:
    """The document at ``source``; ValueError (or OSError) saying why there is none."""
    if source.document is not None:
        return source.document
    if source.file is not None:
        return read_openapi_file(source.file)
    verify = True
    if source.path is not None:
        if gateway is None:
            raise ValueError(f"the gateway serves it: GET {source.path} there")
        url, verify = gateway.url + source.path, gateway.verify
    else:
        assert source.url is not None
        url = source.url
        if url.startswith("target://"):
            url = _target_url(document, url)
    try:
        response = httpx.get(
            url, timeout=_TIMEOUT, verify=verify, headers={"Accept": "application/json"}
        )
    except httpx.HTTPError as error:
        raise ValueError(f"GET {url} failed: {error}") from None
    if response.status_code != 200 or len(response.content) > _MAX:
        raise ValueError(f"GET {url} answered {response.status_code}")
    return parse_openapi(response.content)


def _target_url(document: dict[str, Any], url: str) -> str:
    parts = urlsplit(url)
    found = find(document, "targets", parts.netloc)
    if found is None:
        raise ValueError(f"there is no target {parts.netloc!r}")
    target = found[1]
    nodes: list[dict[str, Any]] = target.get("nodes") or [{}]
    base = target.get("url") or nodes[0].get("url")
    if not isinstance(base, str):
        raise ValueError(f"the target {parts.netloc!r} answers inside the gateway")
    return base.rstrip("/") + parts.path


def _none(detail: str) -> ApiProblem:
    return ApiProblem(404, "not-found", detail)
