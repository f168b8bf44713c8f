"""The portal's catalog (``/portal/apis``): every team's published and deprecated
APIs, searchable, with a page per API (its plans and its reference, rendered from
its OpenAPI document) where a developer subscribes an app to a plan and tries its
operations (quiver.web.portal_tryit).

APIs are named by their team and name (``payments.orders``), as another team's
consumers' subscriptions name them.  Drafts and retired APIs are never shown.
A subscription is requested with the admin API's own
:func:`quiver.admin.subscriptions.create`, so its checks (a published API, a plan it
has, one live request per app and API) and its webhook events are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from quiver.accounts.memberships import allows
from quiver.admin.apis import load_openapi, openapi_source
from quiver.admin.gateway import Gateway
from quiver.admin.problems import ApiProblem
from quiver.admin.subscriptions import NewSubscription
from quiver.admin.subscriptions import create as create_subscription
from quiver.store.teams import list_teams
from quiver.web.errors import PageNotFound, PageRoute, Redirect, refusal
from quiver.web.forms import FormState, read_form
from quiver.web.identity import PortalUser, SignedIn
from quiver.web.pages import render, store_of
from quiver.web.paging import Page
from quiver.web.portal_common import NAV, acting, declarations_of, require_developer, working_team
from quiver.web.portal_openapi import Section, reference
from quiver.web.security import check_post

if TYPE_CHECKING:  # (the "Try it" form's module shows its answer on this page)
    from quiver.web.portal_tryit import Tried

router = APIRouter(route_class=PageRoute, include_in_schema=False)  # (under /portal)
#: the states the catalog shows
LISTED = ("published", "deprecated")


@dataclass(frozen=True)
class CatalogApi:
    team: str
    name: str
    title: str
    description: str
    version: str
    state: str
    tags: list[str]
    plans: list[dict[str, Any]]
    deprecation: dict[str, Any] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        return f"{self.team}.{self.name}"

    def matches(self, query: str) -> bool:
        words = query.lower().split()
        text = " ".join([self.name, self.title, self.description, *self.tags]).lower()
        return all(word in text for word in words)


def catalog(request: Request) -> list[CatalogApi]:
    """Every team's listed APIs, by title."""
    declarations = declarations_of(request)
    found: list[CatalogApi] = []
    for team in list_teams(store_of(request)):
        document = declarations.read(team).document
        for item in document.get("apis") or []:
            if isinstance(item, dict) and item.get("state", "draft") in LISTED:
                found.append(_entry(team, item))
    return sorted(found, key=lambda api: (api.title.lower(), api.reference))


def _entry(team: str, item: dict[str, Any]) -> CatalogApi:
    name = str(item["name"])
    return CatalogApi(
        team=team,
        name=name,
        title=str(item.get("title") or name),
        description=str(item.get("description") or ""),
        version=str(item.get("version") or ""),
        state=str(item.get("state", "draft")),
        tags=[str(tag) for tag in item.get("tags") or []],
        plans=[plan for plan in item.get("plans") or [] if isinstance(plan, dict)],
        deprecation=dict(item.get("deprecation") or {}),
    )


@router.get("/catalog")
def catalog_link() -> Response:
    """The home page's "Browse the API catalog" address."""
    raise Redirect("/portal/apis")


@router.get("/apis")
def apis(request: Request, who: PortalUser, q: str = "", tag: str = "", page: int = 1) -> Response:
    every = catalog(request)
    tags = sorted({t for api in every for t in api.tags}, key=str.lower)
    shown = [api for api in every if api.matches(q) and (not tag or tag in api.tags)]
    return render(
        request,
        "portal",
        "portal/apis.html",
        title="API catalog",
        who=who,
        nav=NAV,
        page=Page.of(shown, page),
        q=q,
        tag=tag,
        tags=tags,
        total=len(every),
    )


@router.get("/apis/{name}")
async def api_page(request: Request, who: PortalUser, name: str, team: str = "") -> Response:
    api, document = await run_in_threadpool(listed, request, name)
    sections, problem = await run_in_threadpool(reference_of, request, document, api)
    return show_api(request, who, api, sections, problem, FormState(), team)


@router.post("/apis/{name}/subscribe")
async def subscribe(request: Request, who: PortalUser, name: str) -> Response:
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), who.csrf)
    team, _ = working_team(who, fields.get("team"))
    require_developer(who, team)
    api, document = await run_in_threadpool(listed, request, name)
    state = FormState.of(fields, "app", "plan")
    if not fields.get("app"):
        state.errors["app"] = "Choose an app."
    if not fields.get("plan"):
        state.errors["plan"] = "Choose a plan."
    if not state.errors:
        body = NewSubscription(api=api.reference, plan=fields["plan"], consumer=fields["app"])
        try:
            await run_in_threadpool(create_subscription, acting(request, who, team), body)
        except ApiProblem as exc:
            state.message = refusal(exc)
        else:
            raise Redirect(f"/portal/subscriptions?team={team}&requested={api.reference}")
    sections, problem = await run_in_threadpool(reference_of, request, document, api)
    return show_api(request, who, api, sections, problem, state, team, status=400)


def show_api(
    request: Request,
    who: SignedIn,
    api: CatalogApi,
    sections: list[Section],
    problem: str | None,
    form: FormState,
    team: str,
    status: int = 200,
    tried: Tried | None = None,
) -> Response:
    """The API's page; ``form`` is the subscription form as shown, ``tried`` the
    operation just tried and its answer."""
    apps: list[str] = []
    can_subscribe = False
    working = ""
    try:
        working, role = working_team(who, team or None)
    except PageNotFound:
        if team:  # a team they may not see: told as one that does not exist
            raise
        role = None  # (they belong to no team: they may only look)
    if role is not None and allows(role, "developer"):
        can_subscribe = True
        document = declarations_of(request).read(working).document
        apps = [str(c["name"]) for c in document.get("consumers") or [] if isinstance(c, dict)]
    return render(
        request,
        "portal",
        "portal/api.html",
        title=api.title,
        who=who,
        nav=NAV,
        api=api,
        sections=sections,
        problem=problem,
        form=form,
        apps=apps,
        can_subscribe=can_subscribe,
        team=working,
        gateway=request.app.state.gateway,
        tried=tried,
        empty_form=FormState(),
        status=status,
    )


def listed(request: Request, reference: str) -> tuple[CatalogApi, dict[str, Any]]:
    """The listed API named ``team.name`` and its team's declaration: the 404 page for
    one that does not exist, is a draft or is retired (told alike)."""
    team, dot, name = reference.partition(".")
    declarations = declarations_of(request)
    if dot and declarations.has_team(team):
        document = declarations.read(team).document
        for item in document.get("apis") or []:
            shown = isinstance(item, dict) and item.get("state", "draft") in LISTED
            if shown and item.get("name") == name:
                return _entry(team, item), document
    raise PageNotFound(f"There is no API {reference!r} in the catalog.")


def reference_of(
    request: Request, document: dict[str, Any], api: CatalogApi
) -> tuple[list[Section], str | None]:
    """The API's reference, or why there is none (a document the gateway generates is
    read from the gateway beside this process)."""
    gateway: Gateway | None = request.app.state.gateway
    item = next(i for i in document.get("apis") or [] if i.get("name") == api.name)
    source = openapi_source(document, item)
    if source is None:
        return [], "This API has no OpenAPI document yet."
    try:
        sections = reference(load_openapi(document, source, gateway))
    except (ValueError, OSError) as exc:
        return [], f"Its OpenAPI document could not be read: {exc}"
    if not sections:
        return [], "Its OpenAPI document describes no operations."
    return sections, None
