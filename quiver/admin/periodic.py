"""A check the admin sidecar makes every few seconds in a thread of its own, such
as reading what the workers wrote to the run directory and publishing its events."""

from __future__ import annotations

import logging
import threading

_log = logging.getLogger("quiver.webhooks")


class Periodic:
    """Runs ``check`` every ``interval_s`` from ``start`` until ``stop``; a check
    that fails (the store is down, say) is logged, and the next one tried."""

    thread_name = "periodic"

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> list[str]:
        """One round; the types of the events published."""
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:
                _log.exception("%s: events not published", self.thread_name)
            self._stop.wait(self._interval_s)
