"""The in-process target types an entry point hands to the proxy.

The built-in ones plus those installed under the ``quiver.targets`` entry-point
group; a package registers one in its ``pyproject.toml``::

    [project.entry-points."quiver.targets"]
    hello = "my_package.targets:Hello"
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

from quiver.demo import DemoTarget
from quiver.plugins.responder import HTTP_TARGET, TargetType, TargetTypes

log = logging.getLogger("quiver.targets")

ENTRY_POINT_GROUP = "quiver.targets"
BUILT_IN: tuple[type[TargetType[Any]], ...] = (DemoTarget,)


def default_target_types() -> TargetTypes:
    """Every available in-process target type by name; built-in names are kept."""
    types: TargetTypes = {kind.name: kind for kind in BUILT_IN}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            kind = entry.load()
        except Exception as exc:  # a broken third-party type must not stop the gateway
            log.error("target type entry point %r not loaded: %s", entry.name, exc)
            continue
        name = getattr(kind, "name", None)
        if not (isinstance(kind, type) and issubclass(kind, TargetType) and isinstance(name, str)):
            log.error("target type entry point %r is not a named TargetType", entry.name)
        elif name in types or name == HTTP_TARGET:
            log.error("target type %r from %s ignored: the name is taken", name, entry.value)
        else:
            types[name] = kind
    return types
