"""The catalog the entry points hand down: built-in plugins and target types, and
those installed as entry points.

The in-process target types that ship with Quiver (the demo) sit at the entry-point
layer, above the proxy, so the catalog holding them is assembled here rather than
next to the built-in plugins.  A package registers its own in its ``pyproject.toml``::

    [project.entry-points."quiver.targets"]
    hello = "my_package.targets:Hello"
"""

from __future__ import annotations

from typing import Any

from quiver.ai.target import AITarget
from quiver.demo import DemoTarget
from quiver.mcp.proxied import ProxiedServers
from quiver.mcp.published import PublishedTools, ResourceMetadata
from quiver.plugins import builtin
from quiver.plugins.catalog import Catalog
from quiver.plugins.responder import TargetType
from quiver.resources.jsonserver.documents import DatabaseTarget, DocumentTarget
from quiver.resources.jsonserver.target import JsonServerTarget
from quiver.resources.openapi import ResourcesOpenAPI
from quiver.resources.target import ResourceTarget

BUILT_IN: tuple[type[TargetType[Any]], ...] = (
    DemoTarget,
    AITarget,
    ResourceTarget,
    ResourcesOpenAPI,
    JsonServerTarget,
    DocumentTarget,
    DatabaseTarget,
    PublishedTools,
    ResourceMetadata,
    ProxiedServers,
)


def default_catalog() -> Catalog:
    """The built-in plugins and target types, and those installed as ``quiver.plugins``
    and ``quiver.targets`` entry points."""
    return Catalog.installed((*builtin.BUILT_IN, *builtin.FOR_ROUTES), BUILT_IN)
