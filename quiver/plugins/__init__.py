"""Plugins: gateway features attached by name to routes, targets or every request."""

from quiver.plugins.base import Plugin, PluginConfig, PluginRequest

__all__ = ["Plugin", "PluginConfig", "PluginRequest"]
