"""A YAML (or JSON) file read as plain data, every value's line noted, and pydantic's
errors about it reworded for people: what every file Quiver reads shares (the gateway's
config, ``quiver sync``'s sources file, declarations sent to an admin API).

Parsing records the line of every value and refuses duplicate keys; ``${VAR}`` in
string values is substituted (:mod:`quiver.config.envsubst`). Mapping keys are always
the text written, so ``on:`` or ``200:`` are the keys ``"on"`` and ``"200"`` rather
than YAML 1.1's boolean and integer.

Nothing here knows the gateway's models: reading a sources file does not load them.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from quiver.config.envsubst import SubstitutionError, substitute
from quiver.errors import ConfigError, ConfigIssue

Path = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def read_text(path: str | os.PathLike[str]) -> tuple[str, str]:
    """The name and text of the file at ``path``; ConfigError when it cannot be read."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8-sig") as file:
            return source, file.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigIssue("", f"cannot read config file: {reason}", source)]) from exc
    except UnicodeDecodeError as exc:
        issue = ConfigIssue("", f"config file is not UTF-8 text: {exc}", source)
        raise ConfigError([issue]) from exc


@dataclass(frozen=True)
class Document:
    """A config file read as plain data (``${VAR}`` substituted), not yet validated:
    what is sent to an admin API, whose issues ``line_of`` places back in the file."""

    source: str
    data: dict[str, object]
    lines: dict[str, int]  # format_location(path) -> line

    def line_of(self, location: str) -> int | None:
        """The line of ``location`` (``routes[3].target``), or of what holds it."""
        while True:
            line = self.lines.get(location)
            if line is not None or not location:
                return line
            cut = max(location.rfind("."), location.rfind("["))
            location = location[: max(cut, 0)]


def parse(
    text: str, source: str | None, env: Mapping[str, str] | None = None
) -> tuple[Report, dict[str, object]]:
    """The top-level mapping of ``text`` (``${VAR}`` taken from ``env``, by default
    ``os.environ``) and the report of its lines and of what could not be read; raises
    ConfigError when there is no mapping to read."""
    report = Report(source)
    return report, _TreeReader(report, os.environ if env is None else env).read_document(text)


def read_document(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Document:
    """The file at ``path`` as plain data; ConfigError for what keeps it from being
    read (syntax, an unset ``${VAR}``, duplicate keys), with lines."""
    source, text = read_text(path)
    report, data = parse(text, source, env)
    if report.issues:
        raise ConfigError(report.sorted_issues())
    lines = {format_location(where): line for where, line in report.lines.items()}
    return Document(source, data, lines)


def top_level_message(data: object) -> str:
    return (
        "the top level must be a mapping of keys such as 'listen', 'targets' and "
        f"'routes', not {_kind(data)}"
    )


def format_location(path: Path) -> str:
    """``("routes", 0, "target")`` as ``routes[0].target``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


@dataclass
class Report:
    """Issues found so far and the line of every value, to say where each one is."""

    source: str | None
    lines: dict[Path, int] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)
    #: paths whose value could not be read as written, already reported
    unreadable: list[Path] = field(default_factory=list)

    def line_of(self, path: Path) -> int | None:
        """Line of the deepest part of ``path`` written in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def add(self, path: Path, message: str, line: int | None = None) -> None:
        line = line or self.line_of(path)
        self.issues.append(ConfigIssue(format_location(path), message, self.source, line))

    def add_found(self, path: Path, message: str) -> None:
        """Add a problem a check found, unless the value was unreadable (said already)."""
        if not any(path[: len(bad)] == bad for bad in self.unreadable):
            self.add(path, message)

    def sorted_issues(self) -> list[ConfigIssue]:
        return sorted(self.issues, key=lambda issue: (issue.line is None, issue.line or 0))


class _TreeReader:
    """Turns a composed YAML node tree into plain data, noting lines and problems."""

    def __init__(self, report: Report, env: Mapping[str, str]) -> None:
        self.report = report
        self.env = env
        self.json_numbers = False
        self._constructor = yaml.SafeLoader("")
        self._open: set[int] = set()  # nodes being read: an alias inside one is a cycle

    def read_document(self, text: str) -> dict[str, object]:
        """The top-level mapping of ``text``; raises ConfigError if there is none."""
        self.json_numbers = _is_json(text)
        if self.json_numbers:
            # JSON allows tabs between tokens where YAML does not; valid JSON has no
            # raw tab inside a string (RFC 8259 section 7), so replacing them is safe.
            text = text.replace("\t", " ")
        source = self.report.source or "<config>"
        try:
            root = _compose(text)
        except yaml.MarkedYAMLError as exc:
            raise ConfigError([_syntax_issue(exc, source)]) from exc
        except yaml.YAMLError as exc:
            raise ConfigError([ConfigIssue("", f"cannot parse: {exc}", source)]) from exc
        data = None if root is None else self.read(root, ())
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.report.add((), top_level_message(data))
            raise ConfigError(self.report.sorted_issues())
        return data

    def read(self, node: yaml.Node, path: Path) -> object:
        self.report.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self._open:
            self._unreadable(path, "an alias refers to a value that contains it")
            return None
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTION_TAGS:
            self._unreadable(path, f"unsupported YAML tag {node.tag!r}")
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.read(item, (*path, index)) for index, item in enumerate(node.value)]
            if isinstance(node, yaml.ScalarNode):
                return self._scalar(node, path)
            return None
        finally:
            self._open.discard(id(node))

    def _unreadable(self, path: Path, message: str) -> None:
        self.report.add(path, message)
        self.report.unreadable.append(path)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, object]:
        result: dict[str, object] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                is_list = isinstance(value_node, yaml.SequenceNode)
                merges.extend(value_node.value if is_list else [value_node])
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.report.add(path, "a key must be a plain value, not a list or mapping")
                continue
            key: str = key_node.value
            key_path = (*path, key)
            if key in result:
                message = (
                    f"duplicate key '{key}' (first written on line {self.report.lines[key_path]})"
                )
                self.report.add(key_path, message, line=key_node.start_mark.line + 1)
                continue
            self.report.lines.setdefault(key_path, key_node.start_mark.line + 1)
            result[key] = self.read(value_node, key_path)
        # "<<: *defaults" fills in keys the mapping does not write itself
        for merge_node in merges:
            merged = self.read(merge_node, path)
            if not isinstance(merged, dict):
                self.report.add(path, "'<<' can only merge mappings")
                continue
            for key, value in merged.items():
                result.setdefault(key, value)
        return result

    def _scalar(self, node: yaml.ScalarNode, path: Path) -> object:
        if self.json_numbers and not node.style and node.tag == _STR_TAG:
            # In valid JSON an unquoted word that YAML 1.1 leaves as text is a
            # number with an exponent, such as 1e3.
            return float(node.value)
        try:
            value = self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self._unreadable(path, f"cannot read value: {getattr(exc, 'problem', exc)}")
            return None
        if isinstance(value, date):
            # an unquoted timestamp stays the text written: a declaration is plain
            # JSON data (the store keeps it so), and the models read the text
            return node.value
        if not isinstance(value, str):
            return value
        try:
            return substitute(value, self.env)
        except SubstitutionError as exc:
            self._unreadable(path, str(exc))
            return value


def _compose(text: str) -> yaml.Node | None:
    """The node tree of ``text``: by libyaml when PyYAML has it (several times faster
    on large files), and by PyYAML's own parser when libyaml refuses the text, so a
    problem is always described in the same words."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        with contextlib.suppress(yaml.YAMLError):
            return yaml.compose(text, Loader=fast)
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _is_json(text: str) -> bool:
    if text.lstrip()[:1] not in ("{", "["):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _syntax_issue(exc: yaml.MarkedYAMLError, source: str) -> ConfigIssue:
    mark = exc.problem_mark or exc.context_mark
    line = None if mark is None else mark.line + 1
    if exc.problem == "but found another document":
        return ConfigIssue(
            "", "a config file holds one YAML document; found a second", source, line
        )
    message = f"syntax error: {exc.problem or exc.context or 'invalid YAML'}"
    if exc.problem and exc.context:
        context_mark = exc.context_mark
        if context_mark is not None and context_mark.line + 1 != line:
            message += f" ({exc.context} that starts on line {context_mark.line + 1})"
        else:
            message += f" ({exc.context})"
    return ConfigIssue("", message, source, line)


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"the value {value!r}"


# -- the plain data, read before the models ------------------------------------------


def mappings(items: object) -> list[tuple[int, dict[str, Any]]]:
    """The mappings in ``items``, each with its index, when ``items`` is a list; none
    when it is of another shape (that is the models' to report)."""
    if not isinstance(items, list):
        return []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, dict)]


def named(items: object) -> list[tuple[int, str]]:
    """The names of the mappings in ``items`` (those written as text), with their index."""
    names = [(index, item.get("name")) for index, item in mappings(items)]
    return [(index, name) for index, name in names if isinstance(name, str)]


# -- pydantic errors, reworded ---------------------------------------------------------


def add_validation_issues(
    report: Report,
    exc: ValidationError,
    data: dict[str, object],
    skip: list[Path],
    model: type[BaseModel],
) -> None:
    messages: dict[Path, list[str]] = {}
    for error in exc.errors(include_url=False):
        kind = error["type"]
        path = _data_path(error["loc"], data, keep_last=kind == "missing")
        if any(path[: len(bad)] == bad for bad in skip):
            continue  # the reader already said why this value is wrong
        if kind == "missing":
            path, message = path[:-1], f"missing required key '{path[-1]}'"
        elif kind == "extra_forbidden":
            fields = _field_names(path[:-1], model)
            message = f"unknown key '{path[-1]}'" + suggestion(path[-1], fields)
        else:
            message = plain(str(error["msg"]))
        # the branches of a union fail separately at one place; say it once
        known = messages.setdefault(path, [])
        if message not in known:
            known.append(message)
    for path, texts in messages.items():
        report.add(path, "; or ".join(texts))


def _data_path(loc: tuple[int | str, ...], data: object, *, keep_last: bool) -> Path:
    """The part of a pydantic ``loc`` that exists in the data.

    Union branches add their type names to ``loc`` and some validators reshape
    the value (a ``listen`` string becomes a list); such parts are dropped so the
    location names what the user wrote.
    """
    path: list[str | int] = []
    value = data
    for index, part in enumerate(loc):
        if _has_part(value, part):
            value = value[part]  # type: ignore[index]
        elif not (keep_last and index == len(loc) - 1):
            continue
        path.append(part)
    return tuple(path)


def _has_part(value: object, part: str | int) -> bool:
    if isinstance(value, dict):
        return part in value
    return isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)


def plain(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def suggestion(word: str | int, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def _field_names(path: Path, model: type[BaseModel]) -> list[str]:
    """Field names of the model(s) that validate the mapping at ``path`` of ``model``."""
    kinds = _members(model)
    for part in path:
        kinds = [child for kind in kinds for child in _members(_child_type(kind, part))]
    return [name for kind in kinds if _is_model(kind) for name in kind.model_fields]


def _child_type(kind: Any, part: str | int) -> Any:
    origin = get_origin(kind)
    if isinstance(part, int) and origin is list:
        return get_args(kind)[0]
    if isinstance(part, str) and origin is dict:
        return get_args(kind)[1]
    if isinstance(part, str) and _is_model(kind) and part in kind.model_fields:
        return kind.model_fields[part].annotation
    return None


def _members(kind: Any) -> list[Any]:
    origin = get_origin(kind)
    if origin is Annotated:
        return _members(get_args(kind)[0])
    if origin is Union or origin is UnionType:
        return [member for arg in get_args(kind) for member in _members(arg)]
    return [kind]


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def model_issues(
    exc: ValidationError, document: Document, model: type[BaseModel]
) -> list[ConfigIssue]:
    """The errors of validating ``document.data`` against ``model``, a model other
    than :class:`Config` (``quiver sync``'s sources file), worded and placed as
    ``quiver check`` places its own."""
    report = Report(document.source)
    add_validation_issues(report, exc, document.data, skip=[], model=model)
    return [replace(issue, line=document.line_of(issue.location)) for issue in report.issues]
