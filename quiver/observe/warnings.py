"""Warnings said at most once a minute per subject.

A full queue or a destination that fails under load would otherwise write a
line per record; the count a warning carries says how many were lost meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

EVERY = 60.0  # seconds between two warnings on one subject


class SparseWarnings:
    """Warnings to ``logger``, one per ``subject`` and ``EVERY`` seconds of ``clock``."""

    def __init__(self, logger: logging.Logger, clock: Callable[[], float]) -> None:
        self._logger = logger
        self._clock = clock
        self._said: dict[str, float] = {}  # when each subject was last warned of

    def warn(self, subject: str, message: str, *args: object) -> None:
        now = self._clock()
        said = self._said.get(subject)
        if said is None or now - said >= EVERY:
            self._said[subject] = now
            self._logger.warning(message, *args)
