"""Config issues as the errors of a problem document.

A write is validated as the whole team document after the change, so an issue's
``location`` is where ``quiver check`` would place it in a config file
(``routes[3].plugins.cors.origins``).  When that place lies inside what the
request sent, the issue also gets an RFC 6901 ``pointer`` into the request body:
the caller says, for each part of the document the body became, where in the
body it came from (``Within(("routes", 3), "")`` for a route sent whole).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

from quiver.admin.problems import ApiProblem, ProblemIssue
from quiver.errors import ConfigError, ConfigIssue

Path = tuple[str | int, ...]
_PART = re.compile(
    r"""\.?(?P<key>[A-Za-z0-9_-]+)|\[(?P<index>\d+)\]|\[(?P<quoted>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\]"""
)


@dataclass(frozen=True)
class Within:
    """The body (at ``pointer``) became the document at ``path``."""

    path: Path
    pointer: str = ""


def parse_location(location: str) -> Path | None:
    """``routes[3].plugins['my plugin']`` as ``("routes", 3, "plugins", "my plugin")``;
    None when it is not a location ``quiver check`` writes."""
    parts: list[str | int] = []
    position = 0
    while position < len(location):
        match = _PART.match(location, position)
        if match is None or match.end() == position:
            return None
        if match["key"] is not None:
            parts.append(match["key"])
        elif match["index"] is not None:
            parts.append(int(match["index"]))
        else:
            parts.append(str(ast.literal_eval(match["quoted"])))
        position = match.end()
    return tuple(parts)


def escape(part: str | int) -> str:
    """An RFC 6901 reference token: ``~`` and ``/`` escaped."""
    return str(part).replace("~", "~0").replace("/", "~1")


def pointer_of(issue: ConfigIssue, sent: Sequence[Within]) -> str | None:
    path = parse_location(issue.location)
    if path is None:
        return None
    for within in sorted(sent, key=lambda item: -len(item.path)):
        if path[: len(within.path)] == within.path:
            return within.pointer + "".join("/" + escape(part) for part in path[len(within.path) :])
    return None


def problem_issues(error: ConfigError, sent: Sequence[Within] = ()) -> list[ProblemIssue]:
    return [
        ProblemIssue(pointer=pointer_of(issue, sent), location=issue.location, detail=issue.message)
        for issue in error.issues
    ]


def invalid_config(
    error: ConfigError,
    sent: Sequence[Within] = (),
    *,
    status: int = 422,
    slug: str = "invalid-config",
) -> ApiProblem:
    """422 ``invalid-config`` (or, for a delete that breaks a reference, 409 ``conflict``)."""
    issues = problem_issues(error, sent)
    first = error.issues[0] if error.issues else None
    if first is None:
        summary = "the config would be invalid"
    else:
        summary = f"{first.location}: {first.message}" if first.location else first.message
    more = len(issues) - 1
    detail = summary + (f" (and {more} more problem{'s' * (more > 1)})" if more > 0 else "")
    return ApiProblem(status, slug, detail, errors=issues)
