"""The plugins that ship with Quiver.

The entry points put them in the catalog they hand down, with the built-in target
types and those installed as entry points (``quiver.target_types.default_catalog``).
"""

from __future__ import annotations

from typing import Any

from quiver.plugins.acl import Acl
from quiver.plugins.ai_cache import AICache
from quiver.plugins.ai_guard import Moderation, Pii, PromptGuard
from quiver.plugins.base import Plugin
from quiver.plugins.basic_auth import BasicAuth
from quiver.plugins.concurrency_limit import ConcurrencyLimit
from quiver.plugins.cors import Cors
from quiver.plugins.ip_restriction import IpRestriction
from quiver.plugins.jwt import Jwt
from quiver.plugins.key_auth import KeyAuth
from quiver.plugins.oauth2_introspection import OAuth2Introspection
from quiver.plugins.products import ApiProduct
from quiver.plugins.proxy_cache import ProxyCache
from quiver.plugins.quota import Quota
from quiver.plugins.rate_limit import RateLimit
from quiver.plugins.request_size_limit import RequestSizeLimit
from quiver.plugins.request_transformer import RequestTransformer
from quiver.plugins.request_validator import RequestValidator
from quiver.plugins.response_transformer import ResponseTransformer

#: put on routes by the data plane (``apis``), never written in a config
FOR_ROUTES: tuple[type[Plugin[Any]], ...] = (ApiProduct,)

BUILT_IN: tuple[type[Plugin[Any]], ...] = (
    IpRestriction,
    KeyAuth,
    BasicAuth,
    Jwt,
    Acl,
    RequestSizeLimit,
    RateLimit,
    ConcurrencyLimit,
    Quota,
    OAuth2Introspection,
    Cors,
    RequestValidator,
    RequestTransformer,
    ResponseTransformer,
    ProxyCache,
    PromptGuard,
    Pii,
    Moderation,
    AICache,
)
