"""The plugin catalog: the plugins a config may name, by name.

A catalog is built once at the entry points (``quiver.plugins.builtin.default_catalog``:
the built-in plugins and those installed as ``quiver.plugins`` entry points) and handed
to whatever needs it: config validation (``load_config(path, catalog=...)``) and the
proxy (``ProxyServer(config, loop, catalog=...)``).  Nothing imports a global one, so
a test or an embedding program builds its own::

    catalog = default_catalog().with_plugins(RequireHeader)

A third-party package registers a plugin class in its ``pyproject.toml``::

    [project.entry-points."quiver.plugins"]
    require-header = "my_package.plugins:RequireHeader"

The catalog refuses a class without ``name``, ``priority``, a ``Config`` model whose
every field has a description, or any phase, and a ``credential`` model that is not a
``CredentialModel`` with described fields.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel

from quiver.config.consumers import CredentialModel
from quiver.plugins.base import Plugin, PluginConfig

log = logging.getLogger("quiver.plugins")

ENTRY_POINT_GROUP = "quiver.plugins"


class PluginDefinitionError(TypeError):
    """A plugin class does not follow the contract (names the class and the rule)."""


def check_plugin(cls: type[Any]) -> type[Plugin[Any]]:
    """``cls`` when it follows the plugin contract; PluginDefinitionError says why not."""
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
    _check_described(f"{where}.Config", config)
    credential = getattr(cls, "credential", None)
    if credential is not None:
        if not (isinstance(credential, type) and issubclass(credential, CredentialModel)):
            raise PluginDefinitionError(f"{where}.credential must subclass CredentialModel")
        _check_described(f"{where}.credential", credential)
    if not cls.phases():
        raise PluginDefinitionError(f"{where} implements no phase")
    return cls


def _check_described(where: str, model: type[BaseModel]) -> None:
    undescribed = [n for n, f in model.model_fields.items() if not f.description]
    if undescribed:
        raise PluginDefinitionError(f"{where} fields without description: {undescribed}")


class Catalog:
    """Plugin classes by name, each checked against the plugin contract."""

    def __init__(self, plugins: Iterable[type[Plugin[Any]]] = ()) -> None:
        self._plugins: dict[str, type[Plugin[Any]]] = {}
        for cls in plugins:
            checked = check_plugin(cls)
            if checked.name in self._plugins:
                raise PluginDefinitionError(f"two plugins are named {checked.name!r}")
            self._plugins[checked.name] = checked

    @classmethod
    def installed(
        cls, built_in: Iterable[type[Plugin[Any]]], group: str = ENTRY_POINT_GROUP
    ) -> Catalog:
        """``built_in`` and every plugin of the ``group`` entry points.

        A broken third-party plugin is logged and left out rather than stopping the
        gateway; built-in names cannot be taken over.
        """
        catalog = cls(built_in)
        for entry in entry_points(group=group):
            try:
                plugin = check_plugin(entry.load())
            except Exception as exc:  # a broken third-party plugin must not stop the gateway
                log.error("plugin entry point %r not loaded: %s", entry.name, exc)
                continue
            if plugin.name in catalog:
                log.error("plugin %r from %s ignored: the name is taken", plugin.name, entry.value)
                continue
            catalog._plugins[plugin.name] = plugin
        return catalog

    def with_plugins(self, *plugins: type[Plugin[Any]]) -> Catalog:
        """A new catalog with ``plugins`` added (a name already taken is an error)."""
        return Catalog([*self._plugins.values(), *plugins])

    def get(self, name: str) -> type[Plugin[Any]] | None:
        return self._plugins.get(name)

    def __getitem__(self, name: str) -> type[Plugin[Any]]:
        return self._plugins[name]

    def __contains__(self, name: object) -> bool:
        return name in self._plugins

    def __iter__(self) -> Iterator[str]:
        return iter(self._plugins)

    def __len__(self) -> int:
        return len(self._plugins)

    def names(self) -> list[str]:
        return list(self._plugins)

    def items(self) -> list[tuple[str, type[Plugin[Any]]]]:
        return list(self._plugins.items())

    def credential_models(self) -> dict[str, type[CredentialModel]]:
        """The credential model of each plugin that declares one, by plugin name."""
        return {
            name: plugin.credential
            for name, plugin in self._plugins.items()
            if plugin.credential is not None
        }
