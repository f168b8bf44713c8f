"""proxy-cache: config validation tables."""

from __future__ import annotations

import re
from typing import Any

import pydantic
import pytest

from quiver.plugins.proxy_cache import ProxyCache


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"backend": "memory", "memory_size": "16MiB", "max_entry_size": "256k"},
        {"backend": "redis", "redis": {"url": "redis://127.0.0.1:6379/0", "timeout": "200ms"}},
        {"backend": "redis", "redis": {"url": "redis+sentinel://10.0.0.1:26379/main"}},
        {"statuses": [200, 404, 302, 500]},
        {"heuristic": 0.1, "heuristic_max": "1h", "keep_stale": "10m", "stale_if_error": 60},
        {"key_host": False, "key_query": ["page", "sort"], "key_headers": ["Accept-Language"]},
        {"key_query": [], "key_consumer": True, "status_header": "X-Cache", "default_ttl": 30},
        {"status_header": ""},
    ],
)
def test_valid_configs(settings: dict[str, Any]) -> None:
    ProxyCache.Config.model_validate(settings)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"backend": "disk"}, "'memory' or 'redis'"),
        ({"backend": "redis"}, "backend 'redis' needs redis: {url: ...}"),
        ({"backend": "redis", "redis": {"url": "http://127.0.0.1:6379"}}, "url must start"),
        ({"redis": {"url": "redis://127.0.0.1"}}, "backend is 'memory'"),
        ({"backend": "redis", "redis": {"url": "redis+cluster://h:7000"}}, "not a Cluster"),
        ({"memory_size": 0}, "greater than 0"),
        ({"memory_size": "lots"}, "not a size"),
        (
            {"max_entry_size": "2MiB", "memory_size": "1MiB"},
            "max_entry_size 2MiB is more than memory_size 1MiB: entries that large could never",
        ),
        ({"memory_size": "512k"}, "max_entry_size 1MiB is more than memory_size 512KiB"),
        ({"max_entry_size": -1}, "greater than 0"),
        ({"statuses": []}, "at least 1 item"),
        ({"statuses": [206]}, "206 cannot be stored"),
        ({"statuses": [304]}, "304 cannot be stored"),
        ({"statuses": [100]}, "100 cannot be stored"),
        ({"heuristic": 2}, "less than or equal to 1"),
        ({"key_headers": ["Accept Language"]}, "is not a valid header name"),
        ({"status_header": "X:Cache"}, "is not a valid header name"),
        ({"coalesce_timeout": 0}, "greater than 0"),
        ({"ttl": 60}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        ProxyCache.Config.model_validate(settings)
