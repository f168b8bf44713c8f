"""A node that holds every request it receives until the test lets them go."""

from __future__ import annotations

import threading

from tests.support.upstream import Conn, json_response


class HoldingNode:
    """An upstream handler: each request is counted as it arrives, then answered 200
    once ``release()`` is called (requests arriving after that are answered at once)."""

    def __init__(self) -> None:
        self.arrived = 0
        self.changed = threading.Condition()
        self.released = threading.Event()

    def __call__(self, conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            with self.changed:
                self.arrived += 1
                self.changed.notify_all()
            self.released.wait(30)
            json_response(conn, request)

    def wait_arrived(self, count: int, timeout: float = 10.0) -> int:
        """Wait until ``count`` requests arrived; how many did."""
        with self.changed:
            self.changed.wait_for(lambda: self.arrived >= count, timeout)
            return self.arrived

    def release(self) -> None:
        self.released.set()

    def __enter__(self) -> HoldingNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()  # (a failed test leaves nothing held)
