"""Reading ``quiver.yaml`` (or JSON) into a validated :class:`Config`.

Loading runs in these steps.  Every problem found along the way becomes a
:class:`ConfigIssue` naming the file, the line and the key at fault, and all of
them are raised together as one :class:`ConfigError`, sorted by line:

1. parse the text with the YAML parser (JSON too, so both get line numbers) into
   plain data, recording the line of every value and rejecting duplicate keys;
2. substitute ``${VAR}`` in string values (:mod:`quiver.config.envsubst`);
3. :func:`validate` the plain data against the catalog it is handed:

   - the pydantic models, their errors reworded for people;
   - references between entities: unique names, routes naming defined targets,
     rewrite templates using only parameters the paths capture;
   - target types: each ``type`` in the catalog, each target's ``options`` valid for
     its type;
   - plugins: each name in the catalog, each config valid for its plugin;
   - consumers' credentials, each valid for the model its plugin declares.

   Each check reads the plain data, so a value one of them refuses hides no problem
   another finds: ``quiver check`` lists every problem of a file in one run.

:func:`validate` also takes data that did not come from a file (an admin API), and
reports the same issues with the same messages, without line numbers.

Reading the text and rewording pydantic's errors is :mod:`quiver.config.document`'s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from quiver.config.ai import reference_issues as ai_reference_issues
from quiver.config.apis import API_PLUGIN, COUNTER_PLUGIN
from quiver.config.apis import reference_issues as api_reference_issues
from quiver.config.consumers import Credential
from quiver.config.document import (
    Path,
    Report,
    add_validation_issues,
    format_location,
    mappings,
    named,
    parse,
    plain,
    read_text,
    suggestion,
    top_level_message,
)
from quiver.config.mcp_routes import OPENAPI_TARGET_TYPE as MCP_OPENAPI_TARGET_TYPE
from quiver.config.models import Config, Settings
from quiver.config.plugin_set import NoPlugins, PluginSet
from quiver.errors import ConfigError

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HTTP_TARGET = "http"  # the proxy's own target type: forwards to the nodes


def load_config(path: str | os.PathLike[str], catalog: PluginSet | None = None) -> Config:
    """Read, substitute, validate and cross-check the config file at ``path``.

    ``catalog`` holds the plugins and target types the file may name (none without
    one but ``http``)."""
    source, text = read_text(path)
    return load_config_text(text, source=source, catalog=catalog)


def load_config_text(
    text: str,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    *,
    catalog: PluginSet | None = None,
) -> Config:
    """Like :func:`load_config` for text already read; ``env`` defaults to ``os.environ``."""
    report, data = parse(text, source, env)
    return _validated(report, data, catalog)


def load_settings(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Settings:
    """Only the :class:`Settings` of the config file at ``path`` (listen, workers, run
    directory, ...): problems elsewhere in the file, such as a ``${VAR}`` of a secret that
    is not set here, are not looked at."""
    source, text = read_text(path)
    report, data = parse(text, source, env)
    fields = list(Settings.model_fields)
    report.issues = [issue for issue in report.issues if _names_one_of(issue.location, fields)]
    settings = {key: value for key, value in data.items() if key in fields}
    try:
        result = Settings.model_validate(settings)
    except ValidationError as exc:
        add_validation_issues(report, exc, settings, skip=report.unreadable, model=Config)
        raise ConfigError(report.sorted_issues()) from None
    if report.issues:
        raise ConfigError(report.sorted_issues())
    return result


def declares(path: str | os.PathLike[str]) -> set[str] | None:
    """The top-level keys of the config file at ``path``; None when it cannot be read
    or parsed (loading it then says why).  ``quiver serve`` tells a bootstrap file
    (``store:`` and settings only) from a declaration by them."""
    try:
        source, text = read_text(path)
        _, data = parse(text, source, {})
    except ConfigError:
        return None
    return set(data)


def _names_one_of(location: str, keys: list[str]) -> bool:
    return any(location == key or location.startswith((f"{key}.", f"{key}[")) for key in keys)


def validate(
    data: object,
    catalog: PluginSet | None = None,
    *,
    apis_elsewhere: Mapping[str, Sequence[str]] | None = None,
) -> Config:
    """The config that plain ``data`` (mappings, lists, strings, numbers) declares.

    Raises :class:`ConfigError` with every issue, as loading a file does but without
    line numbers.  ``catalog`` holds the plugins and target types ``data`` may name
    (none without one but ``http``).  ``apis_elsewhere``: the APIs of other
    declarations (a store's other teams) its consumers may subscribe to, by the
    name they use for them, with their plans' names.
    """
    report = Report(None)
    if not isinstance(data, Mapping):
        report.add((), top_level_message(data))
        raise ConfigError(report.sorted_issues())
    return _validated(report, dict(data), catalog, apis_elsewhere)


def _validated(
    report: Report,
    data: dict[str, object],
    catalog: PluginSet | None,
    apis_elsewhere: Mapping[str, Sequence[str]] | None = None,
) -> Config:
    plugins = catalog if catalog is not None else NoPlugins()
    try:
        config: Config | None = Config.model_validate(data)
    except ValidationError as exc:
        config = None
        add_validation_issues(report, exc, data, skip=report.unreadable, model=Config)
    _add_reference_issues(report, data, apis_elsewhere)
    _add_target_type_issues(report, data, plugins)
    _add_plugin_issues(report, data, plugins)
    _add_counter_issues(report, data, plugins)
    credentials = _checked_credentials(report, data, plugins)
    if config is not None and not report.issues:
        _add_mcp_issues(report, config, data, plugins)
    if report.issues or config is None:
        raise ConfigError(report.sorted_issues())
    return _with_credentials(config, credentials)


# -- references between entities, plugins and credentials --------------------------------
#
# These checks read the plain data, not the validated models, so that they run (and
# find what they find) whatever the models refused elsewhere.  Each looks only at
# values of the shape it needs; a value of another shape is the models' to report.


def _add_reference_issues(
    report: Report,
    data: Mapping[str, object],
    apis_elsewhere: Mapping[str, Sequence[str]] | None = None,
) -> None:
    _check_unique(report, "targets", "target", named(data.get("targets")))
    _check_unique(report, "routes", "route", named(data.get("routes")))
    _check_unique(report, "consumers", "consumer", named(data.get("consumers")))
    targets = list(dict.fromkeys(name for _, name in named(data.get("targets"))))
    for index, route in mappings(data.get("routes")):
        target = route.get("target")
        if isinstance(target, str) and target not in targets:
            if targets:
                defined = ", ".join(f"'{name}'" for name in targets)
                message = f"unknown target '{target}' (defined targets: {defined})"
            else:
                message = f"unknown target '{target}': no targets are defined"
            message += suggestion(target, targets)
            report.add_found(("routes", index, "target"), message)
        rewrite, paths = route.get("rewrite"), _usable_paths(route.get("paths"))
        if isinstance(rewrite, str) and paths:
            _check_rewrite(report, ("routes", index, "rewrite"), rewrite, paths)
    for where, message in ai_reference_issues(data):
        report.add_found(where, message)
    _check_unique(report, "apis", "API", named(data.get("apis")))
    for where, message in api_reference_issues(data, apis_elsewhere):
        report.add_found(where, message)


def _usable_paths(paths: object) -> list[str]:
    """The route paths whose parameters can be told (all of them, or none)."""
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        return []
    for path in paths:
        if path.startswith("~"):
            try:
                re.compile(path[1:])
            except re.error:
                return []  # the model reports the bad regex
    return list(paths)


def _check_unique(report: Report, section: str, noun: str, names: list[tuple[int, str]]) -> None:
    first: dict[str, int] = {}
    for index, name in names:
        if name in first:
            earlier = (section, first[name], "name")
            line = report.line_of(earlier)
            where = format_location(earlier[:2]) + (f" on line {line}" if line else "")
            report.add((section, index, "name"), f"duplicate {noun} name '{name}' (also {where})")
        else:
            first[name] = index


def _add_target_type_issues(report: Report, data: Mapping[str, object], known: PluginSet) -> None:
    """Every target's ``type`` must exist and its ``options`` must validate against
    the type's model (``http`` is the proxy's own: the models check its targets)."""
    # (types the config compiles itself, such as "ai", are not offered to write)
    offered = [
        n for n in known.target_type_names() if getattr(known.target_type(n), "listed", True)
    ]
    types = [_HTTP_TARGET, *sorted(offered)]
    for index, target in mappings(data.get("targets")):
        name = target.get("type", _HTTP_TARGET)
        if not isinstance(name, str) or name == _HTTP_TARGET:
            continue
        where: Path = ("targets", index)
        kind = known.target_type(name)
        if kind is None:
            listed = ", ".join(f"'{known_type}'" for known_type in types)
            message = f"unknown target type '{name}' (known types: {listed})"
            report.add_found((*where, "type"), message + suggestion(name, types))
            continue
        options = target.get("options", {})
        if isinstance(options, dict):
            _validated_part(report, (*where, "options"), kind.Options, options)


def _add_mcp_issues(
    report: Report, config: Config, data: Mapping[str, object], known: PluginSet
) -> None:
    """The targets routes' ``mcp`` keys compile into are checked by their type (an
    inline or file document is read now), their faults placed at the key."""
    kind = known.target_type(MCP_OPENAPI_TARGET_TYPE)
    if kind is None:
        return
    routes = {name: index for index, name in named(data.get("routes"))}
    for target in config.targets:
        if target.type != MCP_OPENAPI_TARGET_TYPE:
            continue
        index = routes.get(str(target.options.get("route")))
        where: Path = ("routes", index, "mcp") if index is not None else ("targets",)
        try:
            kind.Options.model_validate(target.options)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                report.add_found(where, plain(str(error["msg"])))


def _add_plugin_issues(report: Report, data: Mapping[str, object], known: PluginSet) -> None:
    """Every plugin name must exist and its config must validate against its model."""
    consumers = [name for _, name in named(data.get("consumers"))]
    levels: list[tuple[Path, object]] = [((), data.get("plugins"))]
    for section in ("targets", "routes", "consumers"):
        levels += [((section, i), item.get("plugins")) for i, item in mappings(data.get(section))]
    for prefix, plugins in levels:
        if not isinstance(plugins, dict):
            continue
        for name, settings in plugins.items():
            where: Path = (*prefix, "plugins", name)
            plugin = known.get(name) if name != API_PLUGIN else None
            if plugin is None:
                message = f"unknown plugin '{name}'" + suggestion(name, sorted(known.names()))
                report.add_found(where, message + " (see: quiver plugins)")
                continue
            if prefix[:1] == ("consumers",) and plugin.identifies_consumers:
                report.add(where, f"'{name}' identifies consumers: it cannot be attached to one")
                continue
            if not isinstance(settings, dict):
                continue
            validated = _validated_part(report, where, plugin.Config, settings)
            anonymous = getattr(validated, "anonymous", None)
            if anonymous is not None and anonymous not in consumers:
                message = f"unknown consumer '{anonymous}'" + suggestion(anonymous, consumers)
                report.add_found((*where, "anonymous"), message)
            path_issues = getattr(validated, "path_issues", None)  # settings that need routes
            if path_issues is not None:
                for key, message in path_issues(_paths_served(data, prefix, name)):
                    report.add((*where, key), message)


def _add_counter_issues(report: Report, data: Mapping[str, object], known: PluginSet) -> None:
    """An API's ``counters`` are the store settings of the rate-limit plugin, which
    counts its plans: checked by that plugin's model."""
    plugin = known.get(COUNTER_PLUGIN)
    if plugin is None:
        return
    for index, api in mappings(data.get("apis")):
        counters = api.get("counters")
        if isinstance(counters, dict) and counters:
            settings = {"limit": 1, "window": 1, **counters}
            _validated_part(report, ("apis", index, "counters"), plugin.Config, settings)


def _paths_served(data: Mapping[str, object], prefix: Path, name: str) -> list[str]:
    """Path patterns of the routes a plugin set at ``prefix`` applies to: those that do
    not set it closer to themselves (none for a consumer's plugins)."""

    def plugins_of(item: Mapping[str, object]) -> Mapping[str, object]:
        plugins = item.get("plugins")
        return plugins if isinstance(plugins, dict) else {}

    def paths_of(route: Mapping[str, object]) -> list[str]:
        paths = route.get("paths")
        return [p for p in paths if isinstance(p, str)] if isinstance(paths, list) else []

    routes = [route for _, route in mappings(data.get("routes"))]
    if prefix[:1] == ("routes",):
        return paths_of(dict(mappings(data.get("routes")))[int(prefix[1])])
    if prefix[:1] == ("consumers",):
        return []
    targets = [target for _, target in mappings(data.get("targets"))]
    on_target = {t.get("name") for t in targets if name in plugins_of(t)}
    if prefix[:1] == ("targets",):
        target = dict(mappings(data.get("targets")))[int(prefix[1])].get("name")
        routes = [r for r in routes if r.get("target") == target]
    else:
        routes = [r for r in routes if r.get("target") not in on_target]
    return [path for route in routes if name not in plugins_of(route) for path in paths_of(route)]


Validated = dict[int, dict[str, list[Credential]]]


def _checked_credentials(report: Report, data: Mapping[str, object], known: PluginSet) -> Validated:
    """Each consumer's credentials validated by the model of the plugin they are filed
    under, by consumer index."""
    models = known.credential_models()
    validated: Validated = {}
    owners: dict[tuple[str, Hashable], tuple[int, str]] = {}  # identity -> first consumer
    for index, consumer in mappings(data.get("consumers")):
        credentials = consumer.get("credentials")
        if not isinstance(credentials, dict):
            continue
        mine = validated[index] = {}
        for name, items in credentials.items():
            where: Path = ("consumers", index, "credentials", name)
            model = models.get(name)
            if model is None:
                report.add_found(where, f"unknown key '{name}'" + suggestion(name, list(models)))
                continue
            if not isinstance(items, list):
                continue
            mine[name] = []
            for position, item in enumerate(items):
                if not isinstance(item, dict):
                    continue
                credential = _validated_part(report, (*where, position), model, item)
                if credential is None:
                    continue
                mine[name].append(credential)
                identity = credential.identity()
                first = owners.setdefault((name, identity), (index, str(consumer.get("name"))))
                if identity is not None and first[0] != index:
                    report.add_found(
                        (*where, position),
                        f"identifies consumer '{first[1]}' already: a credential "
                        "may identify one consumer only",
                    )
    return validated


M = TypeVar("M", bound=BaseModel)


def _validated_part(report: Report, where: Path, model: type[M], value: object) -> M | None:
    """``value`` validated by ``model``, or None with its problems reported under ``where``."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        fields = list(model.model_fields)
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            if error["type"] == "extra_forbidden":
                key = loc[-1]
                message = f"unknown key '{key}'" + suggestion(key, fields)
            elif error["type"] == "missing":
                loc, message = loc[:-1], f"missing required key '{loc[-1]}'"
            else:
                message = plain(str(error["msg"]))
            report.add_found((*where, *loc), message)
        return None


def _with_credentials(config: Config, validated: Validated) -> Config:
    """``config`` with each consumer's credentials as their plugin's model."""
    if not any(validated.values()):
        return config
    consumers = [
        consumer.model_copy(update={"credentials": validated[index]})
        if validated.get(index)
        else consumer
        for index, consumer in enumerate(config.consumers)
    ]
    return config.model_copy(update={"consumers": consumers})


def _check_rewrite(report: Report, path: Path, rewrite: str, paths: list[str]) -> None:
    captured = {route_path: captured_params(route_path) for route_path in paths}
    usable = set.intersection(*captured.values())
    for param in dict.fromkeys(_PARAM.findall(rewrite)):
        if param in usable:
            continue
        lacking = [route_path for route_path, names in captured.items() if param not in names]
        quoted = ", ".join(f"'{route_path}'" for route_path in lacking)
        noun = "path" if len(lacking) == 1 else "paths"
        message = f"'{{{param}}}' is not captured by {noun} {quoted}"
        if usable:
            message += f"; usable here: {', '.join(f'{{{name}}}' for name in sorted(usable))}"
        elif len(paths) > 1:
            message += "; a rewrite may only use parameters that every path captures"
        report.add(path, message)


def captured_params(path: str) -> set[str]:
    """Parameter names a route path captures: ``{name}`` segments or regex named groups."""
    if path.startswith("~"):
        return set(re.compile(path[1:]).groupindex)
    return set(_PARAM.findall(path))
