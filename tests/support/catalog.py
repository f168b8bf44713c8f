"""The plugin catalog tests use by default, and config loading bound to it."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from quiver import config as config_package
from quiver.config.models import Config
from quiver.config.plugin_set import PluginSet
from quiver.plugins.catalog import Catalog
from quiver.target_types import default_catalog


@functools.cache
def built_in() -> Catalog:
    """The catalog ``quiver`` itself starts from (built once per test run)."""
    return default_catalog()


def load_config_text(
    text: str,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    *,
    catalog: PluginSet | None = None,
) -> Config:
    """``quiver.config.load_config_text`` with the built-in catalog unless given one."""
    plugins = catalog if catalog is not None else built_in()
    return config_package.load_config_text(text, source, env, catalog=plugins)
