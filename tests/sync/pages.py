"""An HTTP server on a free port that serves pages of records, for ``quiver sync`` tests."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

Pages = Callable[[str, dict[str, str]], Any]  # (path, query) -> JSON document or Reply


@dataclass
class Reply:
    """An answer other than ``200`` with a JSON body: a status, headers."""

    document: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-response (the point of the kill tests) is no error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serving(pages: Pages) -> Iterator[tuple[str, list[str]]]:
    """The server's base URL, and the requests it answered (path and query)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            seen.append(self.path)
            answer = pages(url.path, query)
            reply = answer if isinstance(answer, Reply) else Reply(answer)
            body = json.dumps(reply.document).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def items(page: int, size: int = 10) -> list[dict[str, Any]]:
    return [
        {
            "id": (page - 1) * size + n,
            "name": f"item {n}",
            "updated_at": f"2024-01-{page:02d}T00:00:00Z",
            "owner": {"id": n % 3, "email": f"o{n % 3}@example.com"},
            "tags": [{"k": "a", "v": n}, {"k": "b", "v": n + 1}][: n % 3],
        }
        for n in range(size)
    ]
