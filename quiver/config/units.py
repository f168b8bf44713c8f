"""Durations and sizes as people write them in config files."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_duration(value: object) -> object:
    """``"250ms"``, ``"5s"``, ``"2m"``, ``"1h"``, ``"7d"`` or a number of seconds, to seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 5s, 2m, 1h, 1d)")
        return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    return value


def format_duration(seconds: float) -> str:
    """``seconds`` in the largest unit :func:`parse_duration` reads it in (``"5d"``,
    ``"1.5h"``, ``"40s"``), to three significant digits."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"


def parse_size(value: object) -> object:
    """``"64k"``, ``"10MB"``, ``"1GiB"`` or a number of bytes, to bytes (powers of 1024)."""
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match is None:
            raise ValueError(f"not a size: {value!r} (use e.g. 64k, 10MB, 1GiB)")
        unit = (match.group(2) or "").lower()[:1]
        return int(match.group(1)) * _SIZE_UNITS[unit]
    return value
