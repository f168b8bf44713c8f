"""Credentials over real sockets: static schemes, and OAuth2 against an in-test token endpoint."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from typing import Any
from urllib.parse import parse_qs

import pytest

from quiver.client import (
    APIKeyAuth,
    AsyncClient,
    AuthError,
    BasicAuth,
    BearerAuth,
    Client,
    ClientCredentials,
    ClientProblem,
    RefreshToken,
    ServerStatusError,
)
from quiver.client.auth import Auth
from tests.client.scripted import Answer, Events, Waits, json_answer, scripted
from tests.support.upstream import Request, Upstream

pytestmark = pytest.mark.timeout(20)


@pytest.mark.parametrize(
    ("auth", "header", "value", "query"),
    [
        (BearerAuth("t0k"), "Authorization", "Bearer t0k", ""),
        (BasicAuth("ann", "s3cret"), "Authorization", "Basic YW5uOnMzY3JldA==", ""),
        (APIKeyAuth("k-1"), "X-API-Key", "k-1", ""),
        (APIKeyAuth("k-1", name="apikey", where="query"), "X-API-Key", None, "?apikey=k-1"),
    ],
)
def test_static_credentials_go_where_their_scheme_says(
    auth: Auth, header: str, value: str | None, query: str
) -> None:
    with Upstream() as server, Client(server.url, auth=auth) as client:
        client.get("/me")
    [request] = server.requests
    assert request.header(header) == value
    assert request.path == f"/me{query}"


class TokenServer:
    """An OAuth2 authorization server and a resource server on one port: tokens are
    issued at ``/token``, checked on every other path; refresh tokens rotate."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.grants: list[dict[str, str]] = []
        self.refresh_token = "r-0"
        self.accepting = True
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Answer:
        with self.lock:
            if request.path == "/token":
                return self.token(request)
            valid = {f"Bearer {t}" for t in self.issued[-1:]} if self.accepting else set()
            if request.header("Authorization") not in valid:
                problem = {"type": "about:blank", "title": "Unauthorized", "status": 401}
                body = json.dumps(problem).encode()
                return 401, [("Content-Type", "application/problem+json")], body
            return json_answer({"path": request.path})

    def token(self, request: Request) -> Answer:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        form["authorization"] = request.header("Authorization") or ""
        self.grants.append(form)
        if form["grant_type"] == "refresh_token":
            if form.get("refresh_token") != self.refresh_token:
                return json_answer({"error": "invalid_grant"}, 400)
            self.refresh_token = f"r-{len(self.grants)}"
        elif form["authorization"] != "Basic " + base64.b64encode(b"app:pw").decode():
            return json_answer({"error": "invalid_client"}, 401)
        token = f"a-{len(self.grants)}"
        self.issued.append(token)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
        if form["grant_type"] == "refresh_token":
            body["refresh_token"] = self.refresh_token
        return json_answer(body)


def test_client_credentials_fetch_one_token_and_renew_it_before_it_expires() -> None:
    tokens, waits, events = TokenServer(expires_in=60), Waits(), Events()
    with scripted(tokens) as server:
        auth = ClientCredentials(f"{server.url}/token", "app", "pw", scope="read")
        with Client(server.url, auth=auth, clock=waits.clock, on_event=events) as client:
            assert client.get("/a").json() == {"path": "/a"}
            assert client.get("/b").status == 200
            waits.now += 31  # within the 30 s skew of the expiry
            assert client.get("/c").status == 200
    assert [g["grant_type"] for g in tokens.grants] == ["client_credentials"] * 2
    assert tokens.grants[0]["scope"] == "read"
    assert len(events.named("token")) == 2


def test_a_short_lived_token_is_used_for_half_its_life() -> None:
    tokens, waits = TokenServer(expires_in=20), Waits()  # shorter than twice the skew
    with scripted(tokens) as server:
        auth = ClientCredentials(f"{server.url}/token", "app", "pw")
        with Client(server.url, auth=auth, clock=waits.clock) as client:
            for _ in range(5):
                assert client.get("/a").status == 200
                waits.now += 1.9
            assert len(tokens.grants) == 1
            waits.now += 0.6  # ten seconds in: half its life
            assert client.get("/b").status == 200
    assert len(tokens.grants) == 2


def test_a_refused_access_token_is_renewed_once_and_the_request_sent_again() -> None:
    tokens = TokenServer()
    with scripted(tokens) as server:
        auth = ClientCredentials(f"{server.url}/token", "app", "pw")
        with Client(server.url, auth=auth) as client:
            assert client.get("/a").status == 200
            tokens.issued.append("revoked")  # the server forgets the token it gave
            assert client.get("/b").status == 200
            assert len(tokens.grants) == 2
            tokens.accepting = False
            with pytest.raises(ClientProblem) as caught:
                client.get("/c")
    assert caught.value.status == 401
    assert len(tokens.grants) == 3  # renewed once, not in a loop


def test_a_rotated_refresh_token_is_handed_to_the_callback_before_it_is_needed() -> None:
    tokens, waits = TokenServer(expires_in=60), Waits()
    persisted: list[str] = []
    with scripted(tokens) as server:
        auth = RefreshToken(f"{server.url}/token", "app", "r-0", on_refresh_token=persisted.append)
        with Client(server.url, auth=auth, clock=waits.clock) as client:
            assert client.get("/a").status == 200
            waits.now += 60
            assert client.get("/b").status == 200
        # a new process starts from what was persisted; the old token is dead
        restarted = RefreshToken(f"{server.url}/token", "app", persisted[-1])
        with Client(server.url, auth=restarted) as client:
            assert client.get("/c").status == 200
        with (
            Client(server.url, auth=RefreshToken(f"{server.url}/token", "app", "r-0")) as client,
            pytest.raises(AuthError, match="invalid_grant"),
        ):
            client.get("/d")
    assert persisted == ["r-1", "r-2"]
    assert [g["refresh_token"] for g in tokens.grants] == ["r-0", "r-1", "r-2", "r-0"]
    assert all(g["client_id"] == "app" for g in tokens.grants)


def test_a_token_endpoint_refusing_the_client_raises_an_auth_error() -> None:
    with scripted(TokenServer()) as server:
        auth = ClientCredentials(f"{server.url}/token", "app", "wrong")
        with Client(server.url, auth=auth) as client, pytest.raises(AuthError) as caught:
            client.get("/a")
    assert "invalid_client" in str(caught.value)
    assert caught.value.response is not None and caught.value.response.status == 401


def test_concurrent_requests_share_one_refresh_of_a_rotating_token() -> None:
    tokens = TokenServer()
    persisted: list[str] = []

    async def main(url: str) -> list[Any]:
        auth = RefreshToken(f"{url}/token", "app", "r-0", on_refresh_token=persisted.append)
        async with AsyncClient(url, auth=auth) as client:
            answers = await asyncio.gather(*(client.get(f"/{n}") for n in range(5)))
        return [answer.status for answer in answers]

    with scripted(tokens) as server:
        assert asyncio.run(main(server.url)) == [200] * 5
    assert len(tokens.grants) == 1 and persisted == ["r-1"]


def test_a_key_in_the_query_is_sent_but_never_shown() -> None:
    events = Events()
    busy = json_answer({}, 503)
    auth = APIKeyAuth("s3cret-key", name="apikey", where="query")
    with (
        scripted(lambda request: busy) as server,
        Client(server.url, auth=auth, on_event=events, sleep=Waits().sleep) as client,
        pytest.raises(ServerStatusError) as caught,
    ):
        client.get("/orders", params={"page": 2})
    assert all(r.path == "/orders?page=2&apikey=s3cret-key" for r in server.requests)
    assert caught.value.response.url == f"{server.url}/orders?page=2"
    shown = [str(caught.value), *(e.message for e in events), *(str(e.fields) for e in events)]
    assert events and not any("s3cret" in text for text in shown)
