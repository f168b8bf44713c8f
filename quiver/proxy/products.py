"""The API products of a config, put in force on their routes when it is compiled.

Each route of an API gets the built-in ``api-product`` plugin from the catalog (like
``SSEWatch`` for routes with ``sse``, but a plugin implementation, since it counts
with ``rate-limit`` and ``quota``): alone on a retired API, with ``key-auth`` on a
gated API's route that has no authentication, and with the ``api-deprecation``
plugin it makes for a deprecated API (its fields on every answer, refusals too).
A route in no API is left as it is; a config without APIs costs one check.
"""

from __future__ import annotations

from typing import Any

from quiver.config.apis import API_PLUGIN, DEFAULT_AUTH, Api, routes_of
from quiver.config.models import Config
from quiver.errors import ConfigError, ConfigIssue
from quiver.plugins.base import Plugin, PluginContext
from quiver.plugins.catalog import Catalog


class Products:
    """The API of each route of an API, and the plugins that put it in force."""

    def __init__(self, config: Config, catalog: Catalog) -> None:
        self.catalog = catalog
        self.apis: dict[str, Api] = {}
        self.subscribers: dict[str, dict[str, str]] = {}
        self.built: dict[tuple[str, bool], Plugin[Any]] = {}
        if not config.apis:
            return  # (nothing to look at: a config without APIs compiles as before)
        self.apis = routes_of(config.apis, {route.name for route in config.routes})
        for consumer in config.consumers:
            for subscription in consumer.subscriptions:
                by_api = self.subscribers.setdefault(subscription.api, {})
                by_api[consumer.name] = subscription.plan

    def add(
        self, route: str, plugins: dict[str, Plugin[Any]], context: PluginContext
    ) -> dict[str, Plugin[Any]]:
        """``plugins`` with the route's API in force: alone on a retired API (nothing
        else need run to answer 410), with key-auth on a gated API that has no
        authentication."""
        api = self.apis[route]
        # an MCP endpoint's tool calls go through the API's own routes: counted there
        count = route in api.routes
        product = self.built.get((api.name, count))
        if product is None:  # one per API: shared by its routes, like its counters
            product = self.built[api.name, count] = self._build(api, count, context)
        if api.state == "retired":
            return {API_PLUGIN: product}
        if api.plans and not any(p.identifies_consumers for p in plugins.values()):
            key_auth = self._plugin(DEFAULT_AUTH)
            plugins[DEFAULT_AUTH] = key_auth(key_auth.Config.model_validate({}), context)
        plugins[API_PLUGIN] = product
        notice: Plugin[Any] | None = getattr(product, "notice", None)
        if notice is not None:  # (a deprecated API: first of all, so refusals carry it)
            plugins[notice.name] = notice
        return plugins

    def _build(self, api: Api, count: bool, context: PluginContext) -> Plugin[Any]:
        cls = self._plugin(API_PLUGIN)
        subscribers = self.subscribers.get(api.name, {})
        settings = {"api": api, "subscribers": subscribers, "count": count}
        return cls(cls.Config.model_validate(settings), context)

    def _plugin(self, name: str) -> type[Plugin[Any]]:
        cls = self.catalog.get(name)
        if cls is None:
            issue = ConfigIssue("apis", f"the plugin {name!r} is not in the catalog")
            raise ConfigError([issue])
        return cls
