"""The ``format`` values checked: jsonschema's own, plus those OpenAPI documents use.

jsonschema checks email, ipv4, ipv6, date, time, uuid, regex and more without extra
packages; ``date-time`` needs one, so an RFC 3339 check is added when it is missing,
with OpenAPI's ``int32`` and ``int64`` ranges.  Unknown formats only annotate.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from jsonschema import FormatChecker

# RFC 3339 §5.6 date-time (a leap second, :60, is accepted)
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})\Z", re.ASCII
)


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # format applies to strings only
    if _DATE_TIME.match(value) is None:
        return False
    text = value[:17] + "59" + value[19:] if value[17:19] == "60" else value
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _within(bits: int) -> Callable[[object], bool]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def check(value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int):
            return True
        return bool(low <= value <= high)

    return check


def format_checker() -> FormatChecker:
    """A FormatChecker with every format this plugin asserts (a new one each time)."""
    checker = FormatChecker()
    if "date-time" not in checker.checkers:
        checker.checks("date-time")(_date_time)
    checker.checks("int32")(_within(32))
    checker.checks("int64")(_within(64))
    return checker
