"""What the gateway asks the operating system about its own processes."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` is running (one of another user's counts too)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # (another user's)
        return True
    return True
