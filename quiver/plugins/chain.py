"""Plugins attached to a route, compiled once per config into the phases it runs.

Precedence, most specific first: a plugin named on the consumer an authentication
plugin identified replaces the same plugin on the route, which replaces it on the
route's target, which replaces the global one.  Plugins with different names all
run, in ``priority`` order (highest first).  Consumer plugins take over from the
point where the consumer is known: the plugins after the authentication plugin in
that order, and every response and log phase.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from quiver.config.models import Config, Route, Target
from quiver.plugins.base import Plugin, PluginContext
from quiver.plugins.catalog import Catalog

Phase = Callable[..., Any]
Settings = Mapping[str, Mapping[str, Any]]


def attached(config: Config, target: Target, route: Route) -> dict[str, Mapping[str, Any]]:
    """The config of each plugin that applies to ``route``, after precedence."""
    merged: dict[str, Mapping[str, Any]] = {}
    for level in (config.plugins, target.plugins, route.plugins):
        merged.update(level)
    return merged


def scopes(config: Config, target: Target, route: Route) -> dict[str, str]:
    """Where the config of each plugin of ``route`` comes from: "global",
    "target:NAME" or "route:NAME" (what ``PluginContext.scope`` tells the plugin)."""
    found: dict[str, str] = {}
    levels = (
        (config.plugins, "global"),
        (target.plugins, f"target:{target.name}"),
        (route.plugins, f"route:{route.name}"),
    )
    for level, scope in levels:
        found.update(dict.fromkeys(level, scope))
    return found


def build(
    settings: Settings,
    context: PluginContext,
    catalog: Catalog,
    scopes: Mapping[str, str] | str = "global",
) -> dict[str, Plugin[Any]]:
    """Plugin instances for validated ``settings``, by name, from the classes of
    ``catalog``; ``scopes`` says where each one's config is attached (one scope for
    all, or one per name)."""
    plugins = catalog
    built = {}
    for name, raw in settings.items():
        scope = scopes if isinstance(scopes, str) else scopes.get(name, "global")
        here = context if scope == context.scope else replace(context, scope=scope)
        built[name] = plugins[name](plugins[name].Config.model_validate(dict(raw)), here)
    return built


def _order(plugin: Plugin[Any]) -> tuple[int, str]:
    return (-plugin.priority, plugin.name)


class Chain:
    """The phases one set of plugins runs, each in run order.

    ``access`` is split at ``body_at``: the access phases from there on belong to
    plugins that read the whole request body (or come after one), so they wait for
    it.  ``by_consumer`` holds the chain to switch to once a consumer with plugins of
    its own is identified.
    """

    __slots__ = (
        "access",
        "body_at",
        "by_consumer",
        "filters_body",
        "holds_body",
        "keys",
        "log",
        "plugins",
        "response_body",
        "response_headers",
    )

    def __init__(self, plugins: Iterable[Plugin[Any]]) -> None:
        self.plugins = tuple(sorted(plugins, key=_order))
        with_access = [p for p in self.plugins if phase_of(p, "access") is not None]
        self.access: tuple[Phase, ...] = tuple(p.access for p in with_access)
        self.keys = tuple(_order(p) for p in with_access)
        readers = [i for i, p in enumerate(with_access) if p.reads_body]
        self.body_at = readers[0] if readers else len(with_access)
        #: the request body must be held from the start (a reader may run on it)
        self.holds_body = bool(readers)
        self.response_headers = self._phase("response_headers")
        self.response_body = self._phase("response_body")
        #: response bodies pass through plugins (their length may change)
        self.filters_body = any(
            not p.watches_body for p in self.plugins if phase_of(p, "response_body") is not None
        )
        self.log = self._phase("log")
        self.by_consumer: dict[str, Chain] = {}

    def _phase(self, name: str) -> tuple[Phase, ...]:
        return tuple(bound for p in self.plugins if (bound := phase_of(p, name)) is not None)

    def index_after(self, key: tuple[int, str]) -> int:
        """Where to go on in ``access`` after the plugin ordered at ``key`` ran."""
        return bisect_right(self.keys, key)

    def with_consumers(self, consumers: Mapping[str, Mapping[str, Plugin[Any]]]) -> Chain:
        """Add a chain for each consumer with plugins: theirs replace same-named ones."""
        for consumer, own in consumers.items():
            kept = [p for p in self.plugins if p.name not in own]
            chain = self.by_consumer[consumer] = Chain([*kept, *own.values()])
            # (only an access phase can identify a consumer: without one, nothing to hold)
            self.holds_body = self.holds_body or (chain.holds_body and bool(self.access))
        return self


def phase_of(plugin: Plugin[Any], name: str) -> Phase | None:
    """The bound ``name`` phase of ``plugin``, or None when it has none."""
    bound: Phase | None = getattr(plugin, name, None)
    return bound
