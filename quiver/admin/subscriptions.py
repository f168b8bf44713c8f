"""``/subscriptions``: consumers' requests for API plans and their decisions.

A request is made pending, or approved at once when the plan's ``approval`` is
``auto``.  Approving adds ``{api, plan}`` to the consumer's ``subscriptions`` in the
team's declaration (one revision, so the gateways serve it within a second like
any change); revoking an approved one removes it.  Each step publishes its
``subscription.*`` webhook event.  In file mode the declaration is the file's, so
every write answers 405 ``read-only`` like the other writes.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from quiver.admin.auth import Access, Editor, Reader
from quiver.admin.declarations import ReadOnly
from quiver.admin.pagination import Cursor, Limit, paginate
from quiver.admin.problems import ApiProblem
from quiver.admin.responses import WRITE, problems
from quiver.admin.writes import commit, find
from quiver.store import Current, Store
from quiver.store import subscriptions as requests
from quiver.store.subscriptions import SubscriptionRequest, SubscriptionState
from quiver.webhooks.queue import publish

api = APIRouter(tags=["subscriptions"])


class NewSubscription(BaseModel):
    api: str = Field(description="The API of the team.")
    plan: str = Field(description="A plan of that API.")
    consumer: str = Field(description="The consumer of the team who subscribes.")


class Rejection(BaseModel):
    reason: str = Field(min_length=1, description="Why: told to whoever asked.")


class SubscriptionDoc(BaseModel):
    id: str
    team: str
    api: str
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
ApiFilter = Annotated[str | None, Query(description="Only to this API.")]
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
    document = access.declarations.read(access.team).document
    found = find(document, "apis", body.api)
    if found is None:
        raise _invalid(f"there is no API {body.api!r} in team {access.team!r}")
    plan = next((p for p in found[1].get("plans") or [] if p.get("name") == body.plan), None)
    if plan is None:
        raise _invalid(f"the API {body.api!r} has no plan {body.plan!r}")
    if find(document, "consumers", body.consumer) is None:
        raise _invalid(f"there is no consumer {body.consumer!r} in team {access.team!r}")
    live = requests.listed(store, access.team, api=body.api, consumer=body.consumer)
    if any(item.state in ("pending", "approved") for item in live):
        detail = f"the consumer {body.consumer!r} has a pending or approved subscription to it"
        raise ApiProblem(409, "already-exists", detail)
    made = requests.request(store, access.team, body.api, body.plan, body.consumer, access.author)
    _publish(store, "subscription.requested", made)
    if plan.get("approval", "manual") == "auto":
        made = _approve(access, store, made)
    location = f"/subscriptions/{made.id}"
    return JSONResponse(made.document(), 201, headers={"Location": location})


@api.get(
    "/subscriptions",
    response_model=SubscriptionPage,
    responses=problems(),
    summary="List subscription requests",
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
    summary="Approve a pending request: the consumer's key then works on the API",
)
def approve(access: Editor, number: Number) -> dict[str, Any]:
    store = _writable(access)
    pending = _found(access, number)
    if pending.state != "pending":
        raise _conflict(pending, "approved")
    return _approve(access, store, pending).document()


@api.post(
    "/subscriptions/{number}/reject",
    response_model=SubscriptionDoc,
    responses=problems(*WRITE),
    summary="Reject a pending request, saying why",
)
def reject(access: Editor, number: Number, body: Annotated[Rejection, Body()]) -> dict[str, Any]:
    store = _writable(access)
    _found(access, number)
    decided = requests.decide(
        store, access.team, number, "rejected", access.author, was=("pending",), reason=body.reason
    )
    if decided is None:
        raise _conflict(_found(access, number), "rejected")
    _publish(store, "subscription.rejected", decided)
    return decided.document()


@api.delete(
    "/subscriptions/{number}",
    response_model=SubscriptionDoc,
    responses=problems(*WRITE),
    summary="Revoke a request or an approved subscription",
)
def revoke(access: Editor, number: Number) -> dict[str, Any]:
    store = _writable(access)
    current = _found(access, number)
    if current.state not in ("pending", "approved"):
        raise _conflict(current, "revoked")
    if current.state == "approved":
        _set_subscription(access, current, present=False)
    decided = requests.decide(
        store, access.team, number, "revoked", access.author, was=("pending", "approved")
    )
    if decided is None:
        raise _conflict(_found(access, number), "revoked")
    _publish(store, "subscription.revoked", decided)
    return decided.document()


def _approve(access: Access, store: Store, pending: SubscriptionRequest) -> SubscriptionRequest:
    # the declaration first: a request is never approved without the subscription
    _set_subscription(access, pending, present=True)
    decided = requests.decide(
        store, access.team, pending.id, "approved", access.author, was=("pending",)
    )
    if decided is None:
        raise _conflict(_found(access, pending.id), "approved")
    _publish(store, "subscription.approved", decided)
    return decided


def _set_subscription(access: Access, item: SubscriptionRequest, *, present: bool) -> None:
    """Add (or remove) ``{api, plan}`` to the consumer's subscriptions, as a revision."""

    def mutate(current: Current) -> object:
        found = find(current.document, "consumers", item.consumer)
        if found is None:
            if not present:
                return current.document  # the consumer is gone, and its subscriptions
            raise ApiProblem(
                409, "conflict", f"the consumer {item.consumer!r} does not exist any more"
            )
        consumer = found[1]
        kept = [s for s in consumer.get("subscriptions") or [] if s.get("api") != item.api]
        if present:
            kept.append({"api": item.api, "plan": item.plan})
        if kept:
            consumer["subscriptions"] = kept
        else:
            consumer.pop("subscriptions", None)
        return current.document

    verb = "approve" if present else "revoke"
    commit(access, mutate, f"{verb} subscription {item.id} of {item.consumer} to {item.api}")


def _found(access: Access, number: Number) -> SubscriptionRequest:
    found = requests.get(_store(access), access.team, number)
    if found is None:
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


def _publish(store: Store, event: str, item: SubscriptionRequest) -> None:
    data = {k: v for k, v in item.document().items() if k not in ("created_at", "decided_at")}
    publish(store.engine, event, data, now_ms=int(time.time() * 1000))
