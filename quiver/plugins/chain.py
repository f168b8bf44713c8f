"""Plugins attached to a route, compiled once per config into the phases it runs.

Precedence: a plugin named on a route replaces the same plugin on the route's
target, which replaces the global one; plugins with different names all run, in
``priority`` order (highest first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from quiver.config.models import Config, Route, Target
from quiver.plugins.base import Plugin, PluginContext
from quiver.plugins.registry import registry

Phase = Callable[..., Any]


def attached(config: Config, target: Target, route: Route) -> dict[str, Mapping[str, Any]]:
    """The config of each plugin that applies to ``route``, after precedence."""
    merged: dict[str, Mapping[str, Any]] = {}
    for level in (config.plugins, target.plugins, route.plugins):
        merged.update(level)
    return merged


def build(
    settings: Mapping[str, Mapping[str, Any]], context: PluginContext
) -> tuple[Plugin[Any], ...]:
    """Plugin instances for validated ``settings``, highest priority first."""
    plugins = registry()
    instances = [
        plugins[name](plugins[name].Config.model_validate(dict(raw)), context)
        for name, raw in settings.items()
    ]
    instances.sort(key=lambda plugin: -plugin.priority)
    return tuple(instances)


def phase(plugins: tuple[Plugin[Any], ...], name: str) -> tuple[Phase, ...]:
    """The bound ``name`` phase of every plugin that has it, in run order."""
    return tuple(getattr(p, name) for p in plugins if getattr(p, name, None) is not None)
