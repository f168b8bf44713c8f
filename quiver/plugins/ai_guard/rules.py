"""The rules of ``ai-prompt-guard``: a regular expression or a list of keywords,
compiled once per config."""

from __future__ import annotations

import re

from pydantic import Field, model_validator

from quiver.config.base import Strict


class GuardRule(Strict):
    """One rule: a regular expression or keywords (exactly one of the two)."""

    name: str | None = Field(
        None,
        min_length=1,
        description="What the refusal calls the rule (never the text it matched); "
        "by default its place, e.g. deny[0].",
    )
    regex: str | None = Field(
        None,
        min_length=1,
        description="A Python regular expression searched anywhere in each text, e.g. "
        "'(?i)\\bpass(word|phrase)\\b'.",
    )
    keywords: list[str] = Field(
        default_factory=list,
        description="Words or phrases matched as whole words anywhere in each text, "
        "e.g. [acme corp, project falcon].",
    )
    case_sensitive: bool = Field(
        False, description="Match letter case exactly (keywords and regex alike)."
    )

    @model_validator(mode="after")
    def _one_form(self) -> GuardRule:
        if (self.regex is None) == (not self.keywords):
            raise ValueError("give exactly one of 'regex' or 'keywords'")
        if any(not keyword.strip() for keyword in self.keywords):
            raise ValueError("a keyword cannot be empty")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from None
        return self

    def compile(self) -> re.Pattern[str]:
        flags = 0 if self.case_sensitive else re.IGNORECASE
        if self.regex is not None:
            return re.compile(self.regex, flags)
        # longest first, so a phrase wins over a word it starts with
        words = sorted({keyword.strip() for keyword in self.keywords}, key=len, reverse=True)
        spaced = (r"\s+".join(map(re.escape, word.split())) for word in words)
        return re.compile(r"(?<!\w)(?:" + "|".join(spaced) + r")(?!\w)", flags)


def check_names(rules: list[GuardRule]) -> list[GuardRule]:
    """Refuse two rules of one list with the same name."""
    seen: set[str] = set()
    for rule in rules:
        if rule.name is not None:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}")
            seen.add(rule.name)
    return rules


class Rules:
    """A list of compiled rules, each with the name a refusal gives it."""

    __slots__ = ("named",)

    def __init__(self, rules: list[GuardRule], list_name: str) -> None:
        self.named = tuple(
            (rule.name or f"{list_name}[{index}]", rule.compile())
            for index, rule in enumerate(rules)
        )

    def __bool__(self) -> bool:
        return bool(self.named)

    def first_match(self, text: str) -> str | None:
        """The name of the first rule that matches ``text``, or None."""
        for name, pattern in self.named:
            if pattern.search(text) is not None:
                return name
        return None

    def first_match_from(self, text: str, start: int, final: bool) -> str | None:
        """The name of the first rule with a match in ``text`` from ``start`` on
        (what comes before is context, for lookbehinds), or None.  Unless ``final``
        the text may go on, so a match that reaches its end does not count yet: a
        keyword "falcon" at the end of "project falc" + "on" may become "falcons"."""
        end = len(text)
        for name, pattern in self.named:
            found = pattern.search(text, start)
            while found is not None:
                if final or found.end() < end:
                    return name
                if found.start() >= end:
                    break  # (an empty match at the end: searching on would find it again)
                found = pattern.search(text, found.start() + 1)
        return None
