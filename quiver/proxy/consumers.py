"""Consumers as the proxy and plugins see them: defined in the plugin contract
(:mod:`quiver.plugins.consumers`), named here too for the proxy's modules."""

from quiver.plugins.consumers import ConsumerRuntime, Consumers

__all__ = ["ConsumerRuntime", "Consumers"]
