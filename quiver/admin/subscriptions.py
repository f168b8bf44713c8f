"""``/subscriptions``: consumers' requests for API plans and their decisions.

A request is made pending, or approved at once when the plan's ``approval`` is
``auto``.  Approving adds ``{api, plan}`` to the consumer's ``subscriptions`` in its
team's declaration (a revision, so the gateways serve it within a second like any
change) in the transaction that marks the request approved, so the two never
disagree; revoking an approved one removes it the same way.  Each step publishes
its ``subscription.*`` webhook event, in that transaction too.  In file mode the
declaration is the file's, so every write answers 405 ``read-only``.

A team's consumer may ask for another team's published API (``payments.orders``).
The request is then the two teams' alone: the consumer's team sees it and may
revoke it, the API's team sees it and decides it (an admin token of that team, or
an admin token of no team); any other team is told it does not exist.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine

from quiver.admin.auth import Access, Editor, Reader
from quiver.admin.declarations import Also, ReadOnly
from quiver.admin.pagination import Cursor, Limit, paginate
from quiver.admin.problems import ApiProblem
from quiver.admin.responses import WRITE, problems
from quiver.admin.writes import commit, find
from quiver.store import Current, Store
from quiver.store import subscriptions as requests
from quiver.store.engine import WRITE as WRITE_OPTION
from quiver.store.subscriptions import SubscriptionRequest, SubscriptionState
from quiver.webhooks.queue import publish

api = APIRouter(tags=["subscriptions"])


class NewSubscription(BaseModel):
    api: str = Field(
        description="An API of the team, or another team's published API qualified with "
        "its team's name (`payments.orders`)."
    )
    plan: str = Field(description="A plan of that API.")
    consumer: str = Field(description="The consumer of the team who subscribes.")


class Rejection(BaseModel):
    reason: str = Field(min_length=1, description="Why: told to whoever asked.")


class SubscriptionDoc(BaseModel):
    id: str
    team: str = Field(description="The consumer's team.")
    api_team: str = Field(description="The API's team, which decides.")
    api: str = Field(description="The API as the consumer's subscriptions name it.")
    plan: str
    consumer: str
    state: SubscriptionState
    reason: str | None
    requested_by: str
    decided_by: str | None
    created_at: str
    decided_at: str | None


class SubscriptionPage(BaseModel):
    data: list[SubscriptionDoc]
    next: str | None


StateFilter = Annotated[SubscriptionState | None, Query(description="Only in this state.")]
ApiFilter = Annotated[
    str | None, Query(description="Only to this API (`orders`, `payments.orders`).")
]
ConsumerFilter = Annotated[str | None, Query(description="Only of this consumer.")]
Number = Annotated[int, Path(ge=1, le=2**63 - 1, description="The request's id.")]


@api.post(
    "/subscriptions",
    status_code=201,
    response_model=SubscriptionDoc,
    responses=problems(*WRITE),
    summary="Request a subscription to an API plan",
)
def create(access: Editor, body: NewSubscription) -> JSONResponse:
    store = _writable(access)
    own = access.declarations.read(access.team).document
    api_team, name = _owner(access, own, body.api)
    found = find(own if api_team == access.team else _document(access, api_team), "apis", name)
    if found is None:
        raise _invalid(f"there is no API {body.api!r} in team {api_team!r}")
    state = found[1].get("state", "draft")
    if api_team != access.team and state != "published":
        detail = f"the API {body.api!r} is {state}: other teams subscribe to published APIs"
        raise ApiProblem(409, "conflict", detail)
    plan = next((p for p in found[1].get("plans") or [] if p.get("name") == body.plan), None)
    if plan is None:
        raise _invalid(f"the API {body.api!r} has no plan {body.plan!r}")
    if find(own, "consumers", body.consumer) is None:
        raise _invalid(f"there is no consumer {body.consumer!r} in team {access.team!r}")
    if requests.live(store, access.team, body.consumer, api_team, name):
        detail = f"the consumer {body.consumer!r} has a pending or approved subscription to it"
        raise ApiProblem(409, "already-exists", detail)
    made = requests.request(
        store, access.team, api_team, name, body.plan, body.consumer, access.author
    )
    _publish(store.engine, "subscription.requested", made)
    if plan.get("approval", "manual") == "auto":  # (the API's team chose not to decide)
        made = _approve(access, made)
    location = f"/subscriptions/{made.id}"
    return JSONResponse(made.document(), 201, headers={"Location": location})


@api.get(
    "/subscriptions",
    response_model=SubscriptionPage,
    responses=problems(),
    summary="List subscription requests: the team's consumers' and those to its APIs",
)
def list_requests(
    access: Reader,
    limit: Limit = 100,
    cursor: Cursor = None,
    state: StateFilter = None,
    api: ApiFilter = None,
    consumer: ConsumerFilter = None,
) -> dict[str, Any]:
    found = requests.listed(_store(access), access.team, state=state, api=api, consumer=consumer)
    page = paginate([item.document() for item in found], lambda item: item["id"], limit, cursor)
    return {"data": page.items, "next": page.next}


@api.get(
    "/subscriptions/{number}",
    response_model=SubscriptionDoc,
    responses=problems(),
    summary="Get a subscription request",
)
def get_one(access: Reader, number: Number) -> dict[str, Any]:
    return _found(access, number).document()


@api.post(
    "/subscriptions/{number}/approve",
    response_model=SubscriptionDoc,
    responses=problems(*WRITE),
    summary="Approve a pending request (the API's team): the consumer's key then works",
)
def approve(access: Editor, number: Number) -> dict[str, Any]:
    _writable(access)
    pending = _found(access, number)
    _check_decider(access, pending)
    if pending.state != "pending":
        raise _conflict(pending, "approved")
    return _approve(access, pending).document()


@api.post(
    "/subscriptions/{number}/reject",
    response_model=SubscriptionDoc,
    responses=problems(*WRITE),
    summary="Reject a pending request (the API's team), saying why",
)
def reject(access: Editor, number: Number, body: Annotated[Rejection, Body()]) -> dict[str, Any]:
    store = _writable(access)
    pending = _found(access, number)
    _check_decider(access, pending)
    with store.engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        decided = _decide(
            connection, access, pending, "rejected", was=("pending",), reason=body.reason
        )
    return decided.document()


@api.delete(
    "/subscriptions/{number}",
    response_model=SubscriptionDoc,
    responses=problems(*WRITE),
    summary="Revoke a request or an approved subscription (either team)",
)
def revoke(access: Editor, number: Number) -> dict[str, Any]:
    store = _writable(access)
    current = _found(access, number)
    if current.state not in ("pending", "approved"):
        raise _conflict(current, "revoked")
    decided: list[SubscriptionRequest] = []

    def close(connection: Connection) -> None:
        was: tuple[SubscriptionState, ...] = (current.state,)
        decided.append(_decide(connection, access, current, "revoked", was=was))

    if current.state == "approved":
        _set_subscription(access, current, present=False, also=close)
    else:
        with store.engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
            close(connection)
    return decided[0].document()


def _approve(access: Access, pending: SubscriptionRequest) -> SubscriptionRequest:
    """The request approved and the subscription in the consumer's declaration, in
    one transaction: never one without the other."""
    decided: list[SubscriptionRequest] = []

    def mark(connection: Connection) -> None:
        decided.append(_decide(connection, access, pending, "approved", was=("pending",)))

    _set_subscription(access, pending, present=True, also=mark)
    return decided[0]


def _decide(
    connection: Connection,
    access: Access,
    item: SubscriptionRequest,
    state: SubscriptionState,
    *,
    was: tuple[SubscriptionState, ...],
    reason: str | None = None,
) -> SubscriptionRequest:
    """Move the request to ``state`` and queue its webhook event, in ``connection``'s
    transaction; 409 when another decision came first."""
    decided = requests.decide(connection, item.id, state, access.author, was=was, reason=reason)
    if decided is None:
        now = requests.get(connection, item.id)
        raise _conflict(now if now is not None else item, state)
    _publish(connection, f"subscription.{state}", decided)
    return decided


def _set_subscription(
    access: Access, item: SubscriptionRequest, *, present: bool, also: Also
) -> None:
    """Add (or remove) ``{api, plan}`` to the consumer's subscriptions, as a revision
    of the consumer's team, with what ``also`` writes in the same transaction."""

    def mutate(current: Current) -> object:
        found = find(current.document, "consumers", item.consumer)
        if found is None:
            if not present:
                return current.document  # the consumer is gone, and its subscriptions
            raise ApiProblem(
                409, "conflict", f"the consumer {item.consumer!r} does not exist any more"
            )
        consumer = found[1]
        reference = item.reference
        kept = [s for s in consumer.get("subscriptions") or [] if s.get("api") != reference]
        if present:
            kept.append({"api": reference, "plan": item.plan})
        if kept:
            consumer["subscriptions"] = kept
        else:
            consumer.pop("subscriptions", None)
        return current.document

    verb = "approve" if present else "revoke"
    message = f"{verb} subscription {item.id} of {item.consumer} to {item.reference}"
    commit(access, mutate, message, team=item.team, also=also)


def _owner(access: Access, own: dict[str, Any], api: str) -> tuple[str, str]:
    """The team of the API asked for and its name there."""
    if find(own, "apis", api) is not None:
        return access.team, api
    owner, dot, name = api.partition(".")
    if not dot or owner == access.team:
        return access.team, name if dot else api
    if not access.declarations.has_team(owner):
        raise _invalid(f"there is no API {api!r}: no team {owner!r}")
    return owner, name


def _document(access: Access, team: str) -> dict[str, Any]:
    return access.declarations.read(team).document


def _check_decider(access: Access, item: SubscriptionRequest) -> None:
    """Within a team its editors decide; a request for another team's API is decided
    by that team: an admin token of it, or an admin token of no team."""
    if item.api_team == item.team:
        return
    token = access.token
    if token.role == "admin" and token.team in (None, item.api_team):
        return
    detail = (
        f"the subscription request {item.id} is decided by the API's team "
        f"{item.api_team!r}: an admin token of that team, or one of no team"
    )
    raise ApiProblem(403, "forbidden", detail)


def _found(access: Access, number: Number) -> SubscriptionRequest:
    found = requests.get(_store(access), number)
    if found is None or not found.visible_to(access.team):
        detail = f"there is no subscription request {number} in team {access.team!r}"
        raise ApiProblem(404, "not-found", detail)
    return found


def _store(access: Access) -> Store:
    store = access.declarations.store
    if store is None:  # file mode: requests need the declaration to be the store's
        raise ApiProblem(404, "not-found", "subscriptions are kept in store mode only")
    return store


def _writable(access: Access) -> Store:
    store = access.declarations.store
    if store is None:
        detail = str(ReadOnly(getattr(access.declarations, "path", "a file")))
        raise ApiProblem(405, "read-only", detail, headers={"Allow": "GET"})
    return store


def _invalid(detail: str) -> ApiProblem:
    return ApiProblem(422, "invalid-request", detail)


def _conflict(item: SubscriptionRequest, wanted: str) -> ApiProblem:
    return ApiProblem(
        409, "conflict", f"the subscription request {item.id} is {item.state}: not {wanted}"
    )


def _publish(engine: Engine | Connection, event: str, item: SubscriptionRequest) -> None:
    data = {k: v for k, v in item.document().items() if k not in ("created_at", "decided_at")}
    publish(engine, event, data, now_ms=int(time.time() * 1000))
