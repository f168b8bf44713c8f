"""What config validation needs to know of plugins and target types, as an interface.

The config layer imports no plugin: the catalog (``quiver.plugins.catalog``) is
handed to :func:`quiver.config.validate` and friends, and is used only through the
protocols below.  Without one, a config may name no plugin, no credential type and
no target type but ``http``.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from quiver.config.consumers import CredentialModel


class PluginSpec(Protocol):
    """A plugin class as config validation sees it."""

    @property
    def name(self) -> str: ...

    @property
    def Config(self) -> type[BaseModel]: ...

    @property
    def identifies_consumers(self) -> bool: ...


class TargetTypeSpec(Protocol):
    """An in-process target type class as config validation sees it."""

    @property
    def name(self) -> str: ...

    @property
    def Options(self) -> type[BaseModel]: ...


class PluginSet(Protocol):
    """The plugins and target types a config may name (``quiver.plugins.catalog.Catalog``
    is one)."""

    def get(self, name: str) -> PluginSpec | None: ...

    def names(self) -> list[str]: ...

    def credential_models(self) -> dict[str, type[CredentialModel]]: ...

    def target_type(self, name: str) -> TargetTypeSpec | None: ...

    def target_type_names(self) -> list[str]: ...


class NoPlugins:
    """The plugin set of a config validated without a catalog: empty."""

    def get(self, name: str) -> PluginSpec | None:
        return None

    def names(self) -> list[str]:
        return []

    def credential_models(self) -> dict[str, type[CredentialModel]]:
        return {}

    def target_type(self, name: str) -> TargetTypeSpec | None:
        return None

    def target_type_names(self) -> list[str]:
        return []
