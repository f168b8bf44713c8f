"""Declaration documents for the store tests, and reading them as the file loader does."""

from __future__ import annotations

import hashlib
from typing import Any

from quiver.config.document import parse
from quiver.config.models import Settings

ALICE_KEY = "alice-key-0123456789"
BOB_PASSWORD = "bob-password-in-clear"


def read_yaml(text: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Plain data of a YAML config text, read as ``quiver`` reads files (keys stay
    text, ``${VAR}`` substituted), without its process settings."""
    _, data = parse(text, None, env or {})
    return {key: value for key, value in data.items() if key not in Settings.model_fields}


def sha256_hash(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def everything() -> dict[str, Any]:
    """Every kind of entity and attachment, secrets in clear."""
    return {
        "limits": {"max_body_size": "1MB"},
        "timeouts": {"connect": "2s"},
        "plugins": {"cors": {"origins": ["https://example.com"]}},
        "targets": [
            {
                "name": "orders",
                "url": "http://127.0.0.1:9001/api",
                "plugins": {"acl": {"allow": ["staff"]}},
            },
            {
                "name": "stock",
                "nodes": [
                    {"url": "http://127.0.0.1:9002"},
                    {"url": "http://127.0.0.1:9003", "weight": 3},
                ],
                "balance": "least_conn",
            },
        ],
        "routes": [
            {
                "name": "orders",
                "paths": ["/orders/{id}"],
                "methods": ["get"],
                "target": "orders",
                "plugins": {"key-auth": {}, "rate-limit": {"limit": 10, "window": 60}},
            },
            {
                "name": "stock",
                "paths": ["/stock"],
                "target": "stock",
                "plugins": {"basic-auth": {}},
            },
        ],
        "consumers": [
            {
                "name": "alice",
                "groups": ["staff"],
                "credentials": {
                    "key-auth": [{"key": ALICE_KEY}, {"key_hash": sha256_hash("old-key-0123")}]
                },
                "plugins": {"rate-limit": {"limit": 100, "window": 60}},
            },
            {
                "name": "bob",
                "credentials": {"basic-auth": [{"username": "bob", "password": BOB_PASSWORD}]},
            },
        ],
    }
