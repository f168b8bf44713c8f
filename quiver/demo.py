"""The built-in demo target: a small JSON echo API answered inside the gateway.

With no config file ``quiver serve`` routes every path to it, so a newcomer sees
a request travel through the gateway with nothing else installed:
``curl http://127.0.0.1:8080/hello`` answers with what the target received, the
headers the gateway adds included (``X-Forwarded-For``, ``X-Request-ID``...).
"""

from __future__ import annotations

from typing import Any

import orjson

from quiver.config.models import Config
from quiver.plugins.base import PluginRequest
from quiver.plugins.responder import Response, TargetOptions, TargetType

DEMO_TARGET = "demo"
_JSON = [(b"Content-Type", b"application/json")]


def demo_declaration() -> dict[str, Any]:
    """The declaration of the embedded default config (what store mode seeds a new
    store with): every path goes to the demo target."""
    return {
        "targets": [{"name": DEMO_TARGET, "type": DEMO_TARGET}],
        "routes": [{"name": "demo", "paths": ["/"], "target": DEMO_TARGET}],
    }


def demo_config(listen: str = "127.0.0.1:8080") -> Config:
    """The embedded default config: everything goes to the demo target."""
    return Config.model_validate({"listen": listen, **demo_declaration()})


class DemoTarget(TargetType[TargetOptions]):
    """Answers every request with a JSON echo of its method, path, headers and body size."""

    name = DEMO_TARGET

    def handle(self, request: PluginRequest) -> Response:
        path, _, query = request.raw_path.decode("latin-1").partition("?")
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in request.headers
        }
        # what a node behind the gateway would have been told
        headers.setdefault("x-forwarded-for", request.client_ip.decode("latin-1"))
        headers["x-request-id"] = request.rid.decode("latin-1")
        headers["via"] = "1.1 quiver"
        body = orjson.dumps(
            {
                "service": "quiver demo target",
                "method": request.method.decode("latin-1"),
                "path": path,
                "query": request.query.decode("latin-1") or query,
                "headers": headers,
                "body_bytes": len(request.body or b""),
            },
            option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE,
        )
        return Response(200, list(_JSON), body)
