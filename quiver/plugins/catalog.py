"""Plugins by name: the built-in ones and those installed as ``quiver.plugins`` entry points.

A third-party package registers a plugin class in its ``pyproject.toml``::

    [project.entry-points."quiver.plugins"]
    require-header = "my_package.plugins:RequireHeader"

The loader refuses a class without ``name``, ``priority``, a ``Config`` model whose
every field has a description, or any phase.
"""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points
from typing import Any

from quiver.plugins.acl import Acl
from quiver.plugins.base import Plugin, PluginConfig
from quiver.plugins.basic_auth import BasicAuth
from quiver.plugins.cors import Cors
from quiver.plugins.ip_restriction import IpRestriction
from quiver.plugins.jwt import Jwt
from quiver.plugins.key_auth import KeyAuth
from quiver.plugins.oauth2_introspection import OAuth2Introspection
from quiver.plugins.request_size_limit import RequestSizeLimit
from quiver.plugins.request_transformer import RequestTransformer
from quiver.plugins.request_validator import RequestValidator
from quiver.plugins.response_transformer import ResponseTransformer

log = logging.getLogger("quiver.plugins")

ENTRY_POINT_GROUP = "quiver.plugins"
BUILT_IN: tuple[type[Plugin[Any]], ...] = (
    IpRestriction,
    KeyAuth,
    BasicAuth,
    Jwt,
    Acl,
    RequestSizeLimit,
    OAuth2Introspection,
    Cors,
    RequestValidator,
    RequestTransformer,
    ResponseTransformer,
)


class PluginDefinitionError(TypeError):
    """A plugin class does not follow the contract (names the class and the rule)."""


def check_plugin(cls: type[Any]) -> type[Plugin[Any]]:
    where = f"{cls.__module__}.{cls.__qualname__}"
    if not isinstance(cls, type) or not issubclass(cls, Plugin):
        raise PluginDefinitionError(f"{where} is not a quiver Plugin subclass")
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        raise PluginDefinitionError(f"{where} has no 'name'")
    if not isinstance(getattr(cls, "priority", None), int):
        raise PluginDefinitionError(f"{where} has no integer 'priority'")
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, PluginConfig)):
        raise PluginDefinitionError(f"{where}.Config must subclass PluginConfig")
    undescribed = [n for n, f in config.model_fields.items() if not f.description]
    if undescribed:
        raise PluginDefinitionError(f"{where}.Config fields without description: {undescribed}")
    if not cls.phases():
        raise PluginDefinitionError(f"{where} implements no phase")
    return cls


@functools.cache
def registry() -> dict[str, type[Plugin[Any]]]:
    """Every available plugin by name; built-in names cannot be taken over."""
    plugins = {cls.name: check_plugin(cls) for cls in BUILT_IN}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = check_plugin(entry.load())
        except Exception as exc:  # a broken third-party plugin must not stop the gateway
            log.error("plugin entry point %r not loaded: %s", entry.name, exc)
            continue
        if cls.name in plugins:
            log.error("plugin %r from %s ignored: the name is taken", cls.name, entry.value)
            continue
        plugins[cls.name] = cls
    return plugins
