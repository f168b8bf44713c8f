"""An OAuth2 authorization server that rotates refresh tokens, and a paged API that
wants its access tokens, on one free port: what the refresh token tests of
``quiver sync`` run against.

``POST /token`` takes the refresh token grant (RFC 6749 §6): each refresh answers a
new refresh token and revokes the one presented; presenting a revoked one is
refused with ``invalid_grant`` and revokes its whole family (RFC 9700 §4.14.2), as
a server that suspects a stolen token does. ``GET /items?page=N`` answers a page of
records to a valid access token, 401 otherwise; the request numbered ``hold_at``
waits until the test lets it go (it kills the sync meanwhile).
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.sync.pages import items

PAGES = 3


@dataclass
class Authority:
    expires_in: int = 3600  # 0: the client refreshes before every request
    hold_at: int | None = None
    valid: dict[str, str] = field(default_factory=dict)  # family -> its refresh token
    family: dict[str, str] = field(default_factory=dict)  # refresh token -> family
    access: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)  # every token, refresh and access
    presented: list[str] = field(default_factory=list)  # refresh tokens sent to /token
    pages: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def grant(self) -> str:
        """A refresh token of a new family: what an operator gets from a consent."""
        with self.lock:
            return self._refresh_token(secrets.token_hex(4))

    def token(self, form: dict[str, str]) -> tuple[int, Any]:
        with self.lock:
            presented = form.get("refresh_token", "")
            self.presented.append(presented)
            if form.get("grant_type") != "refresh_token" or form.get("client_id") != "cid":
                return 400, {"error": "invalid_request"}
            family = self.family.get(presented)
            if family is None or self.valid.get(family) != presented:
                self.valid.pop(family or "", None)  # a revoked token again: all revoked
                return 400, {"error": "invalid_grant"}
            access = "at-" + secrets.token_hex(8)
            self.access.add(access)
            self.issued.append(access)
            return 200, {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "refresh_token": self._refresh_token(family),
            }

    def page(self, query: dict[str, str], authorization: str | None) -> tuple[int, Any]:
        with self.lock:
            if authorization is None or authorization.removeprefix("Bearer ") not in self.access:
                return 401, {"title": "Unauthorized", "status": 401}
            self.pages += 1
            number = self.pages
        if number == self.hold_at:
            self.reached.set()
            self.released.wait(30)
        return 200, {"data": items(int(query["page"])), "total_pages": PAGES}

    def current(self, token: str) -> str | None:
        """The valid refresh token of the family ``token`` belongs to."""
        with self.lock:
            return self.valid.get(self.family[token])

    def _refresh_token(self, family: str) -> str:
        token = "rt-" + secrets.token_hex(8)
        self.valid[family] = token
        self.family[token] = family
        self.issued.append(token)
        return token


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-request (the point of the kill tests) is no error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serving(authority: Authority) -> Iterator[str]:
    """The base URL of ``authority`` served (``/token`` and ``/items``)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            self._answer(*authority.token(form))

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            self._answer(*authority.page(query, self.headers.get("Authorization")))

        def _answer(self, status: int, document: Any) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        authority.released.set()
        server.shutdown()
        server.server_close()
