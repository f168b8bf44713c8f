"""``${VAR}`` substitution in config strings, the way shells and Compose files spell it.

* ``${VAR}`` is the value of ``VAR``; an unset variable is an error, so a forgotten
  secret never silently becomes an empty string.
* ``${VAR:-default}`` is ``default`` when ``VAR`` is unset or empty.
* ``$$`` is a literal ``$``.  Any other ``$`` is kept as written, so regex paths
  such as ``~^/items$`` need no escaping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)\}|\$\{")


class SubstitutionError(ValueError):
    """A string refers to unset variables or holds a malformed ``${...}``."""


def substitute(value: str, env: Mapping[str, str]) -> str:
    """``value`` with every ``${...}`` replaced from ``env`` and ``$$`` unescaped."""
    if "$" not in value:
        return value
    unset: list[str] = []
    malformed: list[str] = []

    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "$$":
            return "$"
        body = match.group("body")
        if body is None:
            malformed.append("'${' without a closing '}'")
            return text
        name, has_default, default = body.partition(":-")
        if not _NAME.fullmatch(name):
            malformed.append(f"bad variable reference '{text}'")
            return text
        found = env.get(name)
        if has_default:
            return found if found else default
        if found is None:
            unset.append(name)
            return text
        return found

    result = _REFERENCE.sub(replace, value)
    problems = malformed + [
        f"environment variable '{name}' is not set (write ${{{name}:-default}} for a fallback)"
        for name in dict.fromkeys(unset)
    ]
    if problems:
        raise SubstitutionError("; ".join(problems))
    return result
