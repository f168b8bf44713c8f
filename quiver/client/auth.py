"""Credentials a request carries: bearer, basic, API key, OAuth2 tokens.

An ``Auth`` never sends anything itself.  Before each request the client asks it
for a ``token_request`` to send first (None when it has what it needs), hands it
the answer, then lets it ``apply`` its credentials.  So one implementation
serves the async and the sync client, and a token is fetched once for all the
requests waiting on it (the client holds a lock around the exchange).

A scheme of your own needs only ``apply``::

    class Signed(StaticAuth):
        def __init__(self, secret: bytes) -> None:
            self.secret = secret

        def apply(self, request: RequestSpec) -> RequestSpec:
            mac = hmac.new(self.secret, request.url.encode(), "sha256").hexdigest()
            return request.with_headers(**{"X-Signature": mac})
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Literal, Protocol
from urllib.parse import urlencode

from quiver.client.errors import AuthError, DecodingError
from quiver.client.models import RequestSpec, Response


class Auth(Protocol):
    def token_request(self, now: float) -> RequestSpec | None:
        """A request to send before the next one (to get a token), or None."""
        ...

    def token_response(self, response: Response, now: float) -> None:
        """The answer to ``token_request``; raises :class:`AuthError` if refused."""
        ...

    def apply(self, request: RequestSpec) -> RequestSpec:
        """``request`` carrying the credentials."""
        ...

    def refused(self) -> bool:
        """The server answered 401: forget the credentials it refused; True when
        new ones may be obtained (the request is then sent once more)."""
        ...


class StaticAuth:
    """Credentials known up front: subclasses implement ``apply`` only."""

    def token_request(self, now: float) -> RequestSpec | None:
        return None

    def token_response(self, response: Response, now: float) -> None:
        raise AssertionError("static credentials never ask for a token")

    def apply(self, request: RequestSpec) -> RequestSpec:
        raise NotImplementedError

    def refused(self) -> bool:
        return False


class BearerAuth(StaticAuth):
    def __init__(self, token: str) -> None:
        self.token = token

    def apply(self, request: RequestSpec) -> RequestSpec:
        return request.with_headers(Authorization=f"Bearer {self.token}")


class BasicAuth(StaticAuth):
    def __init__(self, username: str, password: str) -> None:
        self.value = _basic(username, password)

    def apply(self, request: RequestSpec) -> RequestSpec:
        return request.with_headers(Authorization=self.value)


class APIKeyAuth(StaticAuth):
    """A key in a header (``X-API-Key`` by default) or in the query string."""

    def __init__(
        self, key: str, name: str = "X-API-Key", where: Literal["header", "query"] = "header"
    ) -> None:
        self.key, self.name, self.where = key, name, where

    def apply(self, request: RequestSpec) -> RequestSpec:
        if self.where == "query":
            return request.with_params(**{self.name: self.key})
        return request.with_headers(**{self.name: self.key})


class _OAuth2:
    """A bearer token from a token endpoint (RFC 6749 §5), renewed ``skew`` seconds
    before it expires (half its lifetime before, for a token that lives less than
    twice ``skew``) and whenever the server refuses it."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | None,
        scope: str | None,
        skew: float,
    ) -> None:
        self.token_url, self.client_id, self.client_secret = token_url, client_id, client_secret
        self.scope, self.skew = scope, skew
        self.access_token: str | None = None
        self.renew_at = float("inf")

    def grant(self) -> dict[str, str]:
        raise NotImplementedError

    def token_request(self, now: float) -> RequestSpec | None:
        if self.access_token is not None and now < self.renew_at:
            return None
        form = self.grant()
        if self.scope:
            form["scope"] = self.scope
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        if self.client_secret is not None:  # client_secret_basic (RFC 6749 §2.3.1)
            headers["Authorization"] = _basic(self.client_id, self.client_secret)
        else:
            form["client_id"] = self.client_id
        body = urlencode(form).encode()
        return RequestSpec("POST", self.token_url, headers=headers, content=body)

    def token_response(self, response: Response, now: float) -> None:
        try:
            body = response.json()
        except DecodingError:
            body = {}
        if not response.is_success or not isinstance(body, dict) or "access_token" not in body:
            error = body.get("error", "no access_token") if isinstance(body, dict) else "no token"
            description = body.get("error_description", "") if isinstance(body, dict) else ""
            raise AuthError(
                f"the token endpoint answered {response.status}: {error} {description}".rstrip(),
                response,
            )
        self.access_token = str(body["access_token"])
        expires_in = body.get("expires_in")
        if expires_in is None:
            self.renew_at = float("inf")
        else:  # (a short-lived token is still used for half its life, not refetched each time)
            lifetime = float(expires_in)
            self.renew_at = now + lifetime - min(self.skew, lifetime / 2)
        self.received(body)

    def received(self, body: dict[str, object]) -> None:
        """The rest of a token response, for grants that keep more than the token."""

    def apply(self, request: RequestSpec) -> RequestSpec:
        return request.with_headers(Authorization=f"Bearer {self.access_token}")

    def refused(self) -> bool:
        self.access_token = None
        return True


class ClientCredentials(_OAuth2):
    """OAuth2 client credentials grant (RFC 6749 §4.4)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        skew: float = 30.0,
    ) -> None:
        super().__init__(token_url, client_id, client_secret, scope, skew)

    def grant(self) -> dict[str, str]:
        return {"grant_type": "client_credentials"}


class RefreshToken(_OAuth2):
    """OAuth2 refresh token grant (RFC 6749 §6).

    Servers that rotate refresh tokens (OAuth 2.0 Security BCP, RFC 9700 §4.14)
    answer each refresh with a new one and refuse the old one from then on: the
    new one is handed to ``on_refresh_token`` before any request uses the access
    token, so that it can be persisted (a file, a secret store) and survive a
    restart::

        auth = RefreshToken(url, "my-app", stored_token(), on_refresh_token=store_token)
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        refresh_token: str,
        *,
        client_secret: str | None = None,
        on_refresh_token: Callable[[str], None] | None = None,
        scope: str | None = None,
        skew: float = 30.0,
    ) -> None:
        super().__init__(token_url, client_id, client_secret, scope, skew)
        self.refresh_token = refresh_token
        self.on_refresh_token = on_refresh_token

    def grant(self) -> dict[str, str]:
        return {"grant_type": "refresh_token", "refresh_token": self.refresh_token}

    def received(self, body: dict[str, object]) -> None:
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated != self.refresh_token:
            self.refresh_token = rotated
            if self.on_refresh_token is not None:
                self.on_refresh_token(rotated)


def _basic(username: str, password: str) -> str:
    pair = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")
