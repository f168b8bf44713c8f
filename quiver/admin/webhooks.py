"""``/webhooks``: endpoints that receive Quiver's events, events applications
publish, and each endpoint's deliveries, attempt log and replays.

Endpoints are global (not a team's): managing them takes an admin token scoped to
no team; reading them any token without a team; publishing an event an editor.
An endpoint's secret is shown once, in the answer that creates it or rotates it,
never listed and never logged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from quiver.admin.auth import caller, superuser
from quiver.admin.problems import ApiProblem
from quiver.admin.responses import problems
from quiver.config.models import NAME_PATTERN
from quiver.config.webhooks import EVENT_TYPE, RESERVED, SUBSCRIPTION, SigningSecret
from quiver.store import Store
from quiver.store.tokens import TokenInfo
from quiver.webhooks import endpoints, queue

api = APIRouter(tags=["webhooks"])
#: how long the previous secret keeps signing after a rotation, by default
ROTATION_GRACE_S = 24 * 3600
Name = Annotated[str, Path(pattern=NAME_PATTERN, description="The endpoint's name.")]


def _reader(token: Annotated[TokenInfo, Depends(caller)]) -> TokenInfo:
    if token.team is not None:
        raise ApiProblem(
            403, "forbidden", f"the token {token.name!r} is scoped to a team; webhooks are global"
        )
    return token


def _publisher(token: Annotated[TokenInfo, Depends(caller)]) -> TokenInfo:
    if token.role == "viewer":
        raise ApiProblem(
            403, "forbidden", f"the token {token.name!r} is a viewer; this needs editor"
        )
    return token


Reader = Annotated[TokenInfo, Depends(_reader)]
Publisher = Annotated[TokenInfo, Depends(_publisher)]
Admin = Annotated[TokenInfo, Depends(superuser)]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _now_ms() -> int:
    return int(time.time() * 1000)


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, description="Unique name of the endpoint.")
    url: AnyHttpUrl = Field(description="Where events are POSTed (http or https).")
    event_types: list[Annotated[str, Field(pattern=SUBSCRIPTION)]] = Field(
        default_factory=list,
        description="Event types sent to it (`consumer.*` for a family); empty: every type.",
    )
    secret: SigningSecret | None = Field(
        None, description="A `whsec_` secret to sign with; a new one is made when omitted."
    )
    description: str = Field("", description="What the endpoint is for.")
    ordered: bool = Field(
        False, description="Deliver one message at a time, in order (a failing one holds the rest)."
    )


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: AnyHttpUrl | None = Field(None, description="Where events are POSTed.")
    event_types: list[Annotated[str, Field(pattern=SUBSCRIPTION)]] | None = None
    description: str | None = None
    ordered: bool | None = None
    enabled: bool | None = Field(None, description="true re-enables a disabled endpoint.")


class EndpointDoc(BaseModel):
    name: str
    url: str
    event_types: list[str]
    description: str
    ordered: bool
    enabled: bool
    disabled_reason: str | None
    created_ms: int
    secrets: int = Field(description="How many secrets sign its messages (2 during a rotation).")


class EndpointCreated(EndpointDoc):
    secret: str = Field(description="The signing secret: shown only here.")


class EndpointPage(BaseModel):
    data: list[EndpointDoc]


class Rotated(BaseModel):
    secret: str = Field(description="The new signing secret: shown only here.")
    grace_s: int = Field(description="Seconds the previous secret keeps signing too.")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret: SigningSecret | None = Field(
        None, description="The new `whsec_` secret; made when omitted."
    )
    grace_s: int = Field(ROTATION_GRACE_S, ge=0, le=30 * 86400)


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(pattern=EVENT_TYPE, max_length=256, description="e.g. `order.shipped`.")
    data: dict[str, Any] = Field(description="The event's data, sent as `data`.")
    id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="The message id (`webhook-id`); publishing an id twice sends it once.",
    )


class EventAccepted(BaseModel):
    id: str = Field(description="The message id receivers see as `webhook-id`.")


class DeliveryDoc(BaseModel):
    msg_id: str
    event_type: str
    created_ms: int
    state: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_ms: int
    last_status: int | None


class DeliveryPage(BaseModel):
    data: list[DeliveryDoc]


class AttemptDoc(BaseModel):
    time_ms: int
    msg_id: str
    event_type: str
    status: int | None = Field(description="The endpoint's status; null when it did not answer.")
    latency_ms: int
    error: str | None


class AttemptPage(BaseModel):
    data: list[AttemptDoc]


@contextmanager
def _named_endpoint() -> Iterator[None]:
    """An endpoint (or message) the request names that does not exist is a 404."""
    try:
        yield
    except endpoints.UnknownEndpoint as exc:
        raise ApiProblem(404, "not-found", str(exc)) from None


@api.get(
    "/webhooks/endpoints",
    response_model=EndpointPage,
    responses=problems(),
    summary="List webhook endpoints",
)
def list_endpoints(_: Reader, request: Request) -> dict[str, Any]:
    found = endpoints.list_endpoints(_store(request).engine, _now_ms())
    return {"data": [vars(item) for item in found]}


@api.post(
    "/webhooks/endpoints",
    status_code=201,
    response_model=EndpointCreated,
    responses=problems(400, 401, 403, 409, 422, 500),
    summary="Create a webhook endpoint (its secret is shown once)",
)
def post_endpoint(_: Admin, request: Request, body: EndpointIn) -> Response:
    engine = _store(request).engine
    try:
        secret = endpoints.create_endpoint(
            engine,
            body.name,
            str(body.url),
            now_ms=_now_ms(),
            event_types=body.event_types,
            secret=body.secret,
            description=body.description,
            ordered=body.ordered,
        )
    except endpoints.EndpointExists as exc:
        raise ApiProblem(409, "already-exists", str(exc)) from None
    except ValueError as exc:
        raise ApiProblem(422, "invalid-request", str(exc)) from None
    made = vars(endpoints.get_endpoint(engine, body.name, _now_ms()))
    return JSONResponse(
        {**made, "secret": secret},
        201,
        headers={"Location": f"/webhooks/endpoints/{body.name}"},
    )


@api.get(
    "/webhooks/endpoints/{name}",
    response_model=EndpointDoc,
    responses=problems(),
    summary="One webhook endpoint",
)
def get_endpoint(_: Reader, request: Request, name: Name) -> dict[str, Any]:
    with _named_endpoint():
        return vars(endpoints.get_endpoint(_store(request).engine, name, _now_ms()))


@api.patch(
    "/webhooks/endpoints/{name}",
    response_model=EndpointDoc,
    responses=problems(400, 401, 403, 404, 422, 500),
    summary="Change a webhook endpoint, or enable it again",
)
def patch_endpoint(_: Admin, request: Request, name: Name, body: EndpointPatch) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True)
    if "url" in changes:
        changes["url"] = str(body.url)
    with _named_endpoint():
        return vars(endpoints.update_endpoint(_store(request).engine, name, _now_ms(), **changes))


@api.delete(
    "/webhooks/endpoints/{name}",
    status_code=204,
    response_class=Response,
    responses=problems(400, 401, 403, 404, 422, 500),
    summary="Delete a webhook endpoint with its deliveries and log",
)
def delete_endpoint(_: Admin, request: Request, name: Name) -> Response:
    with _named_endpoint():
        endpoints.delete_endpoint(_store(request).engine, name)
    return Response(status_code=204)


@api.post(
    "/webhooks/endpoints/{name}/rotate",
    response_model=Rotated,
    responses=problems(400, 401, 403, 404, 422, 500),
    summary="Sign with a new secret; the previous one keeps signing for a grace period",
)
def rotate(_: Admin, request: Request, name: Name, body: RotateIn | None = None) -> dict[str, Any]:
    body = body or RotateIn()
    try:
        with _named_endpoint():
            secret = endpoints.rotate_secret(
                _store(request).engine,
                name,
                now_ms=_now_ms(),
                grace_ms=body.grace_s * 1000,
                secret=body.secret,
            )
    except ValueError as exc:
        raise ApiProblem(422, "invalid-request", str(exc)) from None
    return {"secret": secret, "grace_s": body.grace_s}


@api.get(
    "/webhooks/endpoints/{name}/messages",
    response_model=DeliveryPage,
    responses=problems(),
    summary="An endpoint's messages, newest first (state=dead: the dead letters)",
)
def list_messages(
    _: Reader,
    request: Request,
    name: Name,
    state: Annotated[Literal["pending", "delivered", "dead"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    with _named_endpoint():
        found = queue.deliveries(_store(request).engine, name, state=state, limit=limit)
    return {"data": found}


@api.get(
    "/webhooks/endpoints/{name}/attempts",
    response_model=AttemptPage,
    responses=problems(),
    summary="An endpoint's delivery log, newest first: status, latency, error",
)
def list_attempts(
    _: Reader,
    request: Request,
    name: Name,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    with _named_endpoint():
        return {"data": queue.attempts(_store(request).engine, name, limit=limit)}


@api.post(
    "/webhooks/endpoints/{name}/messages/{msg_id}/replay",
    status_code=202,
    response_class=Response,
    responses=problems(400, 401, 403, 404, 422, 500),
    summary="Send a message to the endpoint again, from the start of the schedule",
)
def replay(
    _: Admin,
    request: Request,
    name: Name,
    msg_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
) -> Response:
    with _named_endpoint():
        queue.replay(_store(request).engine, name, msg_id, now_ms=_now_ms())
    return Response(status_code=202)


@api.post(
    "/webhooks/events",
    status_code=202,
    response_model=EventAccepted,
    responses=problems(400, 401, 403, 409, 422, 500),
    summary="Publish an event to the endpoints subscribed to its type",
)
def post_event(_: Publisher, request: Request, body: EventIn) -> JSONResponse:
    if body.type.split(".", 1)[0] in RESERVED:
        raise ApiProblem(
            422,
            "invalid-request",
            f"event types of the families {', '.join(RESERVED)} are Quiver's own; "
            "name the event after your application",
        )
    try:
        msg_id = queue.publish(
            _store(request).engine, body.type, body.data, now_ms=_now_ms(), msg_id=body.id
        )
    except queue.MessageExists as exc:
        raise ApiProblem(409, "already-exists", str(exc)) from None
    return JSONResponse({"id": msg_id}, 202)
