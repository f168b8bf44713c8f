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

from quiver.http.normalize import canonical_pattern, percent_encode_non_ascii

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
    - regexes and templates with parameters inside a segment: ``regex``, tried
      only when the walk reaches the trie node of ``segments``, the literal
      segments every path it matches starts with (often none).
    """

    text: str  # as configured
    kind: Kind
    anchored: bool  # must cover the whole path ("=" forms)
    literal: bytes  # canonical bytes of the pattern ("{name}" kept in templates)
    literal_count: int  # characters that are not parameters or regex syntax
    param_names: tuple[str, ...]
    segments: tuple[bytes | None, ...] | None  # trie path; None: the exact-path dict
    trailing_slash: bool  # prefix forms ending in "/": more path must follow the segments
    regex: re.Pattern[str] | None


def parse_path_pattern(text: str) -> PathPattern:
    """Compile one path pattern; ValueError says what is wrong with it."""
    if text.startswith("~"):
        try:
            regex = re.compile(text[1:])
        except re.error as exc:
            raise ValueError(f"bad regex {text!r}: {exc}") from exc
        return PathPattern(
            text=text,
            kind="regex",
            anchored=False,
            literal=b"",
            literal_count=regex_literal_count(text[1:]),
            param_names=tuple(regex.groupindex),
            segments=_whole_segments(regex_literal_prefix(text[1:])),
            trailing_slash=False,
            regex=regex,
        )
    anchored = text.startswith("=")
    body = text[1:] if anchored else text
    if not body.startswith("/"):
        raise ValueError(f"path must start with '/', '=/' or '~': {text!r}")
    literal = canonical_pattern(body)
    if b"{" in literal or b"}" in literal:
        return _parse_template(text, literal, anchored)
    trailing = not anchored and literal.endswith(b"/")
    stem = literal[1:-1] if trailing else literal[1:]
    return PathPattern(
        text=text,
        kind="exact" if anchored else "prefix",
        anchored=anchored,
        literal=literal,
        literal_count=len(literal),
        param_names=(),
        segments=None if anchored else tuple(stem.split(b"/")) if len(literal) > 1 else (),
        trailing_slash=trailing,
        regex=None,
    )


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
            segments.append(None)
        else:
            segments.append(segment)
    regex = None
    if not whole_segments:
        source = "".join(pieces) + ("/" if trailing else "") + (r"\Z" if anchored else "")
        if not anchored and not trailing:
            source += r"(?=/|\Z)"  # the template ends on a segment boundary
        regex = re.compile(source)
        segments = segments[: segments.index(None)]  # tried under its leading literals
    return PathPattern(
        text=text,
        kind="template",
        anchored=anchored,
        literal=literal,
        literal_count=len(literal) - sum(len(name) + 2 for name in names),
        param_names=tuple(names),
        segments=tuple(segments),
        trailing_slash=trailing,
        regex=regex,
    )


def regex_literal_prefix(source: str) -> str:
    """Text every string the regex matches (with ``re.match``) starts with.

    Conservative: gives up at the first syntax character, drops a character a
    quantifier applies to, and returns "" for any regex containing ``|``.
    """
    if "|" in source:
        return ""
    index = 1 if source.startswith("^") else 2 if source.startswith("\\A") else 0
    prefix: list[str] = []
    while index < len(source):
        char = source[index]
        step = 1
        if char == "\\":
            char = source[index + 1 : index + 2]
            if not char or char.isalnum():
                break
            step = 2
        elif char in ".^$*+?{}[]()":
            break
        if source[index + step : index + step + 1] in ("*", "+", "?", "{"):
            break
        prefix.append(char)
        index += step
    return "".join(prefix)


def _whole_segments(prefix: str) -> tuple[bytes | None, ...]:
    """The complete segments of a path prefix: ``"/a/b/c"`` -> ``(b"a", b"b")``."""
    if not prefix.startswith("/"):
        return ()
    try:
        return tuple(prefix[1:].encode("latin-1").split(b"/")[:-1])
    except UnicodeEncodeError:  # can never match a latin-1 decoded path: try it everywhere
        return ()


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
