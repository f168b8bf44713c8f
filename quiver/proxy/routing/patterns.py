"""Path patterns and rewrite templates, parsed once at compile time.

Pattern syntax (the ``paths`` of a route)::

    /items          prefix on segment boundaries: /items, /items/, /items/1, not /itemsx
    /api/           prefix ending in a slash: /api/ and /api/x, not /api
    =/items         exactly that path
    /users/{id}     template: {id} captures one non-empty segment; also a prefix
    =/users/{id}    template that must cover the whole path
    /f/{name}.json  a parameter may share its segment with literal text
    ~^/v[0-9]+/     Python regex, re.match against the path decoded as latin-1
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from quiver.proxy.routing.normalize import canonical_pattern, percent_encode_non_ascii

Kind = Literal["exact", "prefix", "template", "regex"]

# Tie-break between paths with as many literal characters (lower sorts first).
KIND_ORDER: dict[Kind, int] = {"exact": 0, "template": 1, "regex": 2, "prefix": 3}

_PARAM = re.compile(rb"\{([^{}/]*)\}")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUANTIFIER = re.compile(r"\{\d*(,\d*)?\}")


@dataclass(frozen=True, slots=True)
class PathPattern:
    """One compiled entry of a route's ``paths``.

    Where it is matched:

    - ``exact`` without parameters: a dict keyed by ``literal``;
    - ``prefix`` and whole-segment templates: the segment trie, along ``segments``
      (``None`` stands for a parameter);
    - regexes and templates with parameters inside a segment: ``regex``.
    """

    text: str  # as configured
    kind: Kind
    anchored: bool  # must cover the whole path ("=" forms)
    literal: bytes  # canonical bytes of the pattern ("{name}" kept in templates)
    literal_count: int  # characters that are not parameters or regex syntax
    param_names: tuple[str, ...]
    segments: tuple[bytes | None, ...] | None  # trie path; None when matched otherwise
    trailing_slash: bool  # prefix forms ending in "/": more path must follow the segments
    regex: re.Pattern[str] | None


def parse_path_pattern(text: str) -> PathPattern:
    """Compile one path pattern; ValueError says what is wrong with it."""
    if text.startswith("~"):
        try:
            regex = re.compile(text[1:])
        except re.error as exc:
            raise ValueError(f"bad regex {text!r}: {exc}") from exc
        names = tuple(regex.groupindex)
        return PathPattern(
            text, "regex", False, b"", regex_literal_count(text[1:]), names, None, False, regex
        )
    anchored = text.startswith("=")
    body = text[1:] if anchored else text
    if not body.startswith("/"):
        raise ValueError(f"path must start with '/', '=/' or '~': {text!r}")
    literal = canonical_pattern(body)
    if b"{" in literal or b"}" in literal:
        return _parse_template(text, literal, anchored)
    if anchored:
        return PathPattern(text, "exact", True, literal, len(literal), (), None, False, None)
    trailing = literal.endswith(b"/")
    stem = literal[1:-1] if trailing else literal[1:]
    segments = tuple(stem.split(b"/")) if len(literal) > 1 else ()
    return PathPattern(text, "prefix", False, literal, len(literal), (), segments, trailing, None)


def _parse_template(text: str, literal: bytes, anchored: bool) -> PathPattern:
    trailing = not anchored and literal.endswith(b"/")
    body = literal[1:-1] if trailing else literal[1:]
    names: list[str] = []
    segments: list[bytes | None] = []
    pieces: list[str] = []  # regex source, used when a parameter shares its segment
    whole_segments = True
    for segment in body.split(b"/"):
        pieces.append("/")
        found = list(_PARAM.finditer(segment))
        start = 0
        for param in (*found, None):
            end = len(segment) if param is None else param.start()
            text_part = segment[start:end]
            if b"{" in text_part or b"}" in text_part:
                raise ValueError(f"unbalanced '{{' or '}}' in {text!r}")
            pieces.append(re.escape(text_part.decode("latin-1")))
            if param is None:
                break
            name = param.group(1).decode("latin-1")
            if not _PARAM_NAME.fullmatch(name):
                raise ValueError(f"bad parameter name {{{name}}} in {text!r}")
            if name in names:
                raise ValueError(f"parameter {{{name}}} appears twice in {text!r}")
            names.append(name)
            pieces.append(f"(?P<{name}>[^/]+)")
            start = param.end()
        if len(found) == 1 and found[0].span() == (0, len(segment)):
            segments.append(None)
        elif found:
            whole_segments = False
        else:
            segments.append(segment)
    count = len(literal) - sum(len(name) + 2 for name in names)
    if whole_segments:
        return PathPattern(
            text,
            "template",
            anchored,
            literal,
            count,
            tuple(names),
            tuple(segments),
            trailing,
            None,
        )
    source = "".join(pieces) + ("/" if trailing else "") + (r"\Z" if anchored else "")
    if not anchored and not trailing:
        source += r"(?=/|\Z)"
    regex = re.compile(source)
    return PathPattern(
        text, "template", anchored, literal, count, tuple(names), None, trailing, regex
    )


def regex_literal_count(source: str) -> int:
    """Characters a regex matches literally, counted to rank it among other paths.

    Syntax, character classes, group headers, quantifiers and escapes such as
    ``\\d`` count as nothing; ``\\.`` counts as one.  It is a ranking heuristic,
    not a parser: ``~^/v[0-9]+/`` counts 2.
    """
    count = 0
    index = 0
    length = len(source)
    while index < length:
        char = source[index]
        if char == "\\":
            if index + 1 < length and not source[index + 1].isalnum():
                count += 1
            index += 2
        elif char == "[":
            index = _skip_class(source, index)
        elif char == "(":
            index = _skip_group_header(source, index)
        elif char == "{" and (quantifier := _QUANTIFIER.match(source, index)):
            index = quantifier.end()
        else:
            if char not in ".^$*+?|)":
                count += 1
            index += 1
    return count


def _skip_class(source: str, index: int) -> int:
    index += 1
    if source[index : index + 1] == "^":
        index += 1
    if source[index : index + 1] == "]":
        index += 1
    while index < len(source) and source[index] != "]":
        index += 2 if source[index] == "\\" else 1
    return index + 1


def _skip_group_header(source: str, index: int) -> int:
    if source[index + 1 : index + 2] != "?":
        return index + 1
    kind = source[index + 2 : index + 3]
    if kind == "P":
        close = ">" if source[index + 3 : index + 4] == "<" else ")"
        end = source.find(close, index)
        return end + 1 if end >= 0 else len(source)
    if kind == "#":
        end = source.find(")", index)
        return end + 1 if end >= 0 else len(source)
    if kind == "<":  # look-behind: (?<= or (?<!
        return index + 4
    index += 2
    while index < len(source) and source[index] in "aiLmsux-":
        index += 1
    return index + 1  # the ":", "=", "!" or ")" closing the header


def parse_rewrite(text: str) -> tuple[bytes | str, ...]:
    """A rewrite template split into literal bytes and parameter names (str).

    ``"/v2/users/{id}"`` -> ``(b"/v2/users/", "id")``; a leading ``/`` is added
    when missing so the forwarded path always starts with one.
    """
    if not text.startswith("/"):
        text = "/" + text
    encoded = percent_encode_non_ascii(text)
    if any(byte < 0x21 or byte == 0x7F for byte in encoded):
        raise ValueError(f"rewrite {text!r} contains a space or control character")
    parts: list[bytes | str] = []
    start = 0
    for param in _PARAM.finditer(encoded):
        name = param.group(1).decode("ascii")
        if not _PARAM_NAME.fullmatch(name):
            raise ValueError(f"bad parameter name {{{name}}} in rewrite {text!r}")
        if param.start() > start:
            parts.append(encoded[start : param.start()])
        parts.append(name)
        start = param.end()
    if b"{" in encoded[start:] or b"}" in encoded[start:]:
        raise ValueError(f"unbalanced '{{' or '}}' in rewrite {text!r}")
    if start < len(encoded):
        parts.append(encoded[start:])
    return tuple(parts)
