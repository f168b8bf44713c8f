"""The few primitives that differ between the async client and its generated sync twin.

``scripts/unasync.py`` rewrites each ``async_``/``Async`` name used in
``_async/`` into its ``sync_``/``Sync`` counterpart here.
"""

from __future__ import annotations

import asyncio
import threading
import time


async def async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def sync_sleep(seconds: float) -> None:
    time.sleep(seconds)


AsyncLock = asyncio.Lock
SyncLock = threading.Lock
