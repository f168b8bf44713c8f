"""Who sees what of an ``mcp`` target: its ``access`` rules for one caller.

A rule is for the consumers it names and the members of the groups it names (a
rule naming neither is for every caller); a caller sees what the rules for it
allow, together.  Without rules everyone sees everything; with rules a caller no
rule is for sees nothing.  Patterns are globs (``fnmatch``, case-sensitive) on
tool and prompt names as clients see them and on resource URIs::

    view = Access(options.access).view(caller.consumer)
    if not view.allows("tools", "weather_forecast"):
        ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from quiver.config.mcp import McpAccessRule
from quiver.plugins.consumers import ConsumerRuntime

Kind = Literal["tools", "resources", "prompts"]


@dataclass(frozen=True, slots=True)
class View:
    """What one caller may see: the patterns of each kind (None: everything)."""

    tools: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    prompts: tuple[str, ...] | None

    def allows(self, kind: Kind, name: str) -> bool:
        patterns: tuple[str, ...] | None = getattr(self, kind)
        if patterns is None:
            return True
        return any(fnmatchcase(name, pattern) for pattern in patterns)


EVERYTHING = View(None, None, None)


class Access:
    """The ``access`` rules of a target."""

    def __init__(self, rules: Sequence[McpAccessRule]) -> None:
        self.rules = tuple(rules)

    def view(self, consumer: ConsumerRuntime | None) -> View:
        """What ``consumer`` (None: an anonymous caller) may see."""
        if not self.rules:
            return EVERYTHING
        tools: list[str] = []
        resources: list[str] = []
        prompts: list[str] = []
        for rule in self.rules:
            if _applies(rule, consumer):
                tools += rule.tools
                resources += rule.resources
                prompts += rule.prompts
        return View(tuple(tools), tuple(resources), tuple(prompts))


def _applies(rule: McpAccessRule, consumer: ConsumerRuntime | None) -> bool:
    if not rule.consumers and not rule.groups:
        return True
    if consumer is None:
        return False
    return consumer.name in rule.consumers or not consumer.groups.isdisjoint(rule.groups)
