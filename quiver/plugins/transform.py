"""Edits of header fields and query parameters, and the checks of names and values
that plugin config models share (JSON body fields: ``json_body``).

The request- and response-transformer list four kinds of edit, applied in this order:
``remove`` drops fields, ``rename`` moves a field's value to a new name, ``replace``
changes only fields that are present, ``add`` sets only fields that are absent.  Both
compile their config once into a ``HeaderEdits`` and a ``JsonEdits`` (and the request
one into a ``QueryEdits``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import quote_plus, unquote_plus

from pydantic import AfterValidator, Field, field_validator, model_validator

from quiver.config.base import Strict
from quiver.plugins.base import PluginConfig

V = TypeVar("V")
N = TypeVar("N", bound=str)  # a header name type, checked as the plugin allows

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # RFC 9110 §5.6.2
# RFC 9110 §5.5 field-value restricted to ASCII: visible characters, with spaces or
# tabs only between them (leading and trailing whitespace is not part of a value).
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?\Z")

_HOP_BY_HOP = "a hop-by-hop field (RFC 9110 §7.6.1) that the proxy manages per connection"
_FRAMING = "it frames the message body, which is the proxy's job"
_WRITTEN = "the proxy writes it on every request it forwards"

# Why a field is not a plugin's to change, for the config error that refuses it.
WHY_NOT = {
    "host": "the proxy sets it for the node (keep the client's with the route's preserve_host)",
    "content-length": _FRAMING,
    "transfer-encoding": _FRAMING,
    "connection": _HOP_BY_HOP,
    "keep-alive": _HOP_BY_HOP,
    "proxy-connection": _HOP_BY_HOP,
    "te": _HOP_BY_HOP,
    "trailer": _HOP_BY_HOP,
    "upgrade": _HOP_BY_HOP,
    "expect": "the proxy answers 'Expect: 100-continue' itself",
    "x-forwarded-for": _WRITTEN,
    "x-forwarded-proto": _WRITTEN,
    "x-forwarded-host": _WRITTEN,
    "x-request-id": _WRITTEN,
}


def check_token(text: str) -> str:
    if not _TOKEN.match(text):
        raise ValueError(
            f"{text!r} is not a valid name: use letters, digits and !#$%&'*+.^_`|~- "
            "(an RFC 9110 token)"
        )
    return text


def check_value(text: str) -> str:
    if not _FIELD_VALUE.match(text):
        raise ValueError(
            f"{text!r} is not a valid header value: use printable ASCII characters, "
            "without line breaks or leading and trailing spaces"
        )
    return text


def header_name(refused: Iterable[str]) -> Callable[[str], str]:
    """A validator of header names that refuses the ``refused`` ones (lowercase), saying why."""
    refused_names = frozenset(refused)

    def check(text: str) -> str:
        check_token(text)
        lname = text.lower()
        if lname in refused_names:
            why = WHY_NOT.get(lname, "the proxy manages it")
            raise ValueError(f"'{text}' cannot be changed by a plugin: {why}")
        return text

    return check


def distinct(names: list[str]) -> list[str]:
    """Refuse header names listed twice, in any case (field names are case-insensitive)."""
    seen: dict[str, str] = {}
    for name in names:
        first = seen.get(name.lower())
        if first == name:
            raise ValueError(f"'{name}' is listed twice")
        if first is not None:
            raise ValueError(f"'{first}' and '{name}' name the same header field")
        seen[name.lower()] = name
    return names


def header_keys(check: Callable[[str], str]) -> Callable[[dict[str, V]], dict[str, V]]:
    """A validator of mappings keyed by header names: each is checked, none twice.

    (Checked on the whole mapping so that an error names the mapping, not a key path.)
    """

    def check_keys(mapping: dict[str, V]) -> dict[str, V]:
        for name in mapping:
            check(name)
        distinct(list(mapping))
        return mapping

    return check_keys


def renamed_once(*, fold_case: bool) -> Callable[[dict[str, str]], dict[str, str]]:
    """A validator of renames: no chains, swaps or merges, whose outcome would depend
    on the order of the mapping."""

    def key(name: str) -> str:
        return name.lower() if fold_case else name

    def check(renames: dict[str, str]) -> dict[str, str]:
        sources = {key(old) for old in renames}
        targets: dict[str, str] = {}
        for old, new in renames.items():
            if key(new) == key(old):
                raise ValueError(f"'{old}' is renamed to itself")
            if key(new) in sources:
                raise ValueError(f"'{new}' is both renamed and a new name; rename each once")
            other = targets.get(key(new))
            if other is not None:
                raise ValueError(f"'{other}' and '{old}' are both renamed to '{new}'")
            targets[key(new)] = old
        return renames

    return check


class HeaderNames(Strict, Generic[N]):
    headers: Annotated[list[N], AfterValidator(distinct)] = Field(
        default_factory=list, description="Header names (case-insensitive)."
    )


class _CheckedKeys(Strict):
    check_name: ClassVar[Callable[[str], str]]  # a ``header_name`` validator

    @classmethod
    def _check_keys(cls, mapping: dict[str, V]) -> dict[str, V]:
        return header_keys(cls.check_name)(mapping)


class HeaderRenames(_CheckedKeys, Generic[N]):
    headers: dict[str, N] = Field(
        default_factory=dict, description="Header names, old to new (case-insensitive)."
    )

    @field_validator("headers")
    @classmethod
    def _renamed_once(cls, renames: dict[str, str]) -> dict[str, str]:
        return renamed_once(fold_case=True)(cls._check_keys(renames))


class HeaderValues(_CheckedKeys):
    headers: dict[str, Annotated[str, AfterValidator(check_value)]] = Field(
        default_factory=dict, description="Header names to values (printable ASCII)."
    )

    @field_validator("headers")
    @classmethod
    def _keys(cls, values: dict[str, str]) -> dict[str, str]:
        return cls._check_keys(values)


_EDITS = ("remove", "rename", "replace", "add")


class EditsConfig(PluginConfig):
    """A config whose fields are the four edits, each a model of what it changes
    (``headers``, ``json_fields``, and ``query`` for requests)."""

    @model_validator(mode="after")
    def _something_to_do(self) -> Self:
        if not any(names for _, edit in self for _, names in edit):
            raise ValueError("nothing to change: give 'remove', 'rename', 'replace' or 'add'")
        return self

    def edits(self, target: str) -> tuple[Any, ...]:
        """What ``remove``, ``rename``, ``replace`` and ``add`` say of ``target``."""
        return tuple(getattr(getattr(self, edit), target) for edit in _EDITS)


def _encode(text: str) -> bytes:
    return text.encode("ascii")


class Edits:
    """Base of compiled edits: false when none of the four kinds has anything to do
    (plugins keep ``edits or None``, so requests skip what has nothing to do)."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return any(getattr(self, kind) for kind in _EDITS)


@dataclass(frozen=True, slots=True)
class HeaderEdits(Edits):
    """Header edits compiled from a config: names as bytes, looked up lowercase."""

    remove: tuple[bytes, ...] = ()
    rename: tuple[tuple[bytes, bytes], ...] = ()  # (old lowercase, new as written)
    replace: tuple[tuple[bytes, bytes, bytes], ...] = ()  # (lowercase, as written, value)
    add: tuple[tuple[bytes, bytes, bytes], ...] = ()

    @classmethod
    def build(
        cls,
        remove: Iterable[str],
        rename: Mapping[str, str],
        replace: Mapping[str, str],
        add: Mapping[str, str],
    ) -> HeaderEdits:
        return cls(
            remove=tuple(_encode(name) for name in remove),
            rename=tuple((_encode(old.lower()), _encode(new)) for old, new in rename.items()),
            replace=tuple((_encode(n.lower()), _encode(n), _encode(v)) for n, v in replace.items()),
            add=tuple((_encode(n.lower()), _encode(n), _encode(v)) for n, v in add.items()),
        )

    def apply(
        self,
        get: Callable[[bytes], bytes | None],
        set_field: Callable[[bytes, bytes], None],
        remove_field: Callable[[bytes], None],
        rename_fields: Callable[[bytes, bytes], None] | None = None,
    ) -> None:
        """Edits header fields: ``get(lname)`` is the value of the fields called
        ``lname`` (lowercase) or None, ``set_field(name, value)`` puts one field in place
        of any of that name, ``remove_field(name)`` drops those of that name, and
        ``rename_fields(lname, new)`` calls the fields ``lname``, if any, ``new`` instead,
        in place of any called ``new``.  Without ``rename_fields``, a renamed field's
        value is set as ``get`` gives it (repeated fields joined)."""
        for name in self.remove:
            remove_field(name)
        for lname, new in self.rename:
            if rename_fields is not None:
                rename_fields(lname, new)
            else:
                value = get(lname)
                if value is not None:
                    remove_field(lname)
                    set_field(new, value)
        for lname, name, value in self.replace:
            if get(lname) is not None:
                set_field(name, value)
        for lname, name, value in self.add:
            if get(lname) is None:
                set_field(name, value)


def _component(text: str) -> bytes:
    """``text`` form-encoded (the application/x-www-form-urlencoded serializer)."""
    return _encode(quote_plus(text, safe=""))


def _pair(name: str, value: str) -> bytes:
    return _component(name) + b"=" + _component(value)


def _name_of(param: bytes) -> str:
    """A query parameter's name, decoded for comparison with configured names."""
    raw = param.split(b"=", 1)[0]
    if b"%" not in raw and b"+" not in raw:
        return raw.decode("latin-1")
    return unquote_plus(raw.decode("latin-1"))


@dataclass(frozen=True, slots=True)
class QueryEdits(Edits):
    """Query parameter edits compiled from a config.

    Names compare after percent-decoding and are case-sensitive.  Parameters left
    alone keep their bytes as the client sent them; new names and values are
    form-encoded.  A parameter given several times is removed or renamed in every
    occurrence, and replaced by one parameter where it first occurred.
    """

    remove: frozenset[str] = frozenset()
    rename: tuple[tuple[str, str, bytes], ...] = ()  # (old, new, new encoded)
    replace: tuple[tuple[str, bytes], ...] = ()  # (name, "name=value" encoded)
    add: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def build(
        cls,
        remove: Iterable[str],
        rename: Mapping[str, str],
        replace: Mapping[str, str],
        add: Mapping[str, str],
    ) -> QueryEdits:
        return cls(
            remove=frozenset(remove),
            rename=tuple((old, new, _component(new)) for old, new in rename.items()),
            replace=tuple((name, _pair(name, value)) for name, value in replace.items()),
            add=tuple((name, _pair(name, value)) for name, value in add.items()),
        )

    def apply(self, query: bytes) -> bytes | None:
        """The edited query string, or None when it stays as it is."""
        params = [(_name_of(param), param) for param in query.split(b"&")] if query else []
        changed = False
        if self.remove:
            kept = [param for param in params if param[0] not in self.remove]
            changed = len(kept) != len(params)
            params = kept
        for old, new, encoded in self.rename:
            if any(name == old for name, _ in params):
                params = [
                    (new, encoded + param[len(param.split(b"=", 1)[0]) :])
                    if name == old
                    else (name, param)
                    for name, param in params
                    if name != new
                ]
                changed = True
        for name, pair in self.replace:
            first = next((i for i, (n, _) in enumerate(params) if n == name), None)
            if first is not None:
                params = [
                    (n, pair if i == first else param)
                    for i, (n, param) in enumerate(params)
                    if n != name or i == first
                ]
                changed = True
        for name, pair in self.add:
            if all(n != name for n, _ in params):
                params.append((name, pair))
                changed = True
        return b"&".join(param for _, param in params) if changed else None
