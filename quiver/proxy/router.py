"""The proxy's route lookup; see ``quiver.proxy.routing`` for the rules and how it works."""

from quiver.proxy.routing import RouteMatch, Router, normalize_path

__all__ = ["RouteMatch", "Router", "normalize_path"]
