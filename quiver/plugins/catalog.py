"""The catalog: the plugins and the in-process target types a config may name.

A catalog is built once at the entry points (``quiver.target_types.default_catalog``:
the built-in plugins and target types, and those installed as ``quiver.plugins`` and
``quiver.targets`` entry points) and handed to whatever needs it: config validation
(``load_config(path, catalog=...)``) and the proxy (``ProxyServer(config, loop,
catalog)``).  Nothing imports a global one, so a test or an embedding program builds
its own::

    catalog = default_catalog().with_plugins(RequireHeader).with_target_types(Hello)

A third-party package registers a plugin or a target type class in its
``pyproject.toml``::

    [project.entry-points."quiver.plugins"]
    require-header = "my_package.plugins:RequireHeader"

    [project.entry-points."quiver.targets"]
    hello = "my_package.targets:Hello"

The catalog refuses a plugin class without ``name``, ``priority``, a ``Config`` model
whose every field has a description, or any phase, and a ``credential`` model that is
not a ``CredentialModel`` with described fields.  It refuses a target type class that
does not derive ``TargetType``, is not named like a target (or is named ``http``), has
``Options`` that are not ``TargetOptions`` with described fields, or no ``handle``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import entry_points
from typing import Any, TypeVar

from pydantic import BaseModel

from quiver.config.consumers import CredentialModel
from quiver.config.models import NAME_PATTERN
from quiver.plugins.base import Plugin, PluginConfig
from quiver.plugins.responder import HTTP_TARGET, TargetOptions, TargetType, TargetTypes

log = logging.getLogger("quiver.plugins")

ENTRY_POINT_GROUP = "quiver.plugins"
TARGET_ENTRY_POINT_GROUP = "quiver.targets"


class PluginDefinitionError(TypeError):
    """A plugin or target type class does not follow its contract (names the class
    and the rule)."""


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


def check_target_type(cls: type[Any]) -> type[TargetType[Any]]:
    """``cls`` when it follows the target type contract; PluginDefinitionError says why
    not."""
    where = f"{cls.__module__}.{cls.__qualname__}"
    if not isinstance(cls, type) or not issubclass(cls, TargetType):
        raise PluginDefinitionError(f"{where} is not a quiver TargetType subclass")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise PluginDefinitionError(f"{where} has no 'name' a target's 'type' can give")
    if name == HTTP_TARGET:
        raise PluginDefinitionError(f"{where}: the name {HTTP_TARGET!r} is the proxy's own")
    options = getattr(cls, "Options", None)
    if not (isinstance(options, type) and issubclass(options, TargetOptions)):
        raise PluginDefinitionError(f"{where}.Options must subclass TargetOptions")
    _check_described(f"{where}.Options", options)
    if cls.handle is TargetType.handle:
        raise PluginDefinitionError(f"{where} implements no 'handle'")
    return cls


def _check_described(where: str, model: type[BaseModel]) -> None:
    undescribed = [n for n, f in model.model_fields.items() if not f.description]
    if undescribed:
        raise PluginDefinitionError(f"{where} fields without description: {undescribed}")


class Catalog:
    """Plugin classes and in-process target types by name, each checked against its
    contract."""

    def __init__(
        self,
        plugins: Iterable[type[Plugin[Any]]] = (),
        target_types: Iterable[type[TargetType[Any]]] = (),
    ) -> None:
        self._plugins: dict[str, type[Plugin[Any]]] = {}
        for cls in plugins:
            checked = check_plugin(cls)
            if checked.name in self._plugins:
                raise PluginDefinitionError(f"two plugins are named {checked.name!r}")
            self._plugins[checked.name] = checked
        self._target_types: TargetTypes = {}
        for kind in target_types:
            checked_type = check_target_type(kind)
            if checked_type.name in self._target_types:
                raise PluginDefinitionError(f"two target types are named {checked_type.name!r}")
            self._target_types[checked_type.name] = checked_type

    @classmethod
    def installed(
        cls,
        plugins: Iterable[type[Plugin[Any]]],
        target_types: Iterable[type[TargetType[Any]]] = (),
        *,
        plugin_group: str = ENTRY_POINT_GROUP,
        target_group: str = TARGET_ENTRY_POINT_GROUP,
    ) -> Catalog:
        """``plugins`` and ``target_types``, and every plugin of the ``plugin_group``
        and target type of the ``target_group`` entry points.

        A broken third-party class is logged and left out rather than stopping the
        gateway; built-in names (and ``http``) cannot be taken over.
        """
        catalog = cls(plugins, target_types)
        _install(plugin_group, "plugin", check_plugin, catalog._plugins)
        _install(target_group, "target type", check_target_type, catalog._target_types)
        return catalog

    def with_plugins(self, *plugins: type[Plugin[Any]]) -> Catalog:
        """A new catalog with ``plugins`` added (a name already taken is an error)."""
        return Catalog([*self._plugins.values(), *plugins], self._target_types.values())

    def with_target_types(self, *target_types: type[TargetType[Any]]) -> Catalog:
        """A new catalog with ``target_types`` added (a name already taken is an error)."""
        return Catalog(self._plugins.values(), [*self._target_types.values(), *target_types])

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

    def target_type(self, name: str) -> type[TargetType[Any]] | None:
        """The in-process target type called ``name`` (never ``http``: the proxy's own)."""
        return self._target_types.get(name)

    def target_type_names(self) -> list[str]:
        return list(self._target_types)


Named = TypeVar("Named", type[Plugin[Any]], type[TargetType[Any]])


def _install(
    group: str, noun: str, check: Callable[[type[Any]], Named], into: dict[str, Named]
) -> None:
    """Add the classes of the ``group`` entry points to ``into``, by name."""
    for entry in entry_points(group=group):
        try:
            cls = check(entry.load())
        except Exception as exc:  # a broken third-party class must not stop the gateway
            log.error("%s entry point %r not loaded: %s", noun, entry.name, exc)
            continue
        if cls.name in into:
            log.error("%s %r from %s ignored: the name is taken", noun, cls.name, entry.value)
            continue
        into[cls.name] = cls
