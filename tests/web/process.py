"""``run_admin`` with the pages mounted, as a real process (as ``quiver serve`` runs it)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TOKEN = "qv_" + "w" * 43
_SCRIPT = """
import sys
from quiver.admin import AdminSettings, run_admin
from quiver.logconfig import configure_logging
from quiver.web.site import mount_pages
configure_logging()
cert, key = sys.argv[2] or None, sys.argv[3] or None
settings = AdminSettings(store_url=sys.argv[1], listen="127.0.0.1:0", tls_cert=cert,
                         tls_key=key, ready_fd=int(sys.argv[4]), webhooks=None)
run_admin(settings, pages=mount_pages)
"""


@contextmanager
def admin_with_pages(store: Path, tls: tuple[str, str] | None = None) -> Iterator[int]:
    """The port of an admin process serving the portal and console over ``store``."""
    read_end, write_end = os.pipe()
    cert, key = tls or ("", "")
    scheme, port = ("https" if tls else "http"), 0
    env = {**os.environ, "QUIVER_ADMIN_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(store), cert, key, str(write_end)],
        env=env,
        pass_fds=(write_end,),
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 30)
        assert ready, "the admin process did not get ready"
        port = int(os.read(read_end, 64).decode().strip())
        yield port
    finally:
        os.close(read_end)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert "Traceback" not in stderr, stderr
        if port:  # (it served: it said where the pages are)
            assert f"developer portal at {scheme}://127.0.0.1:{port}/portal" in stderr, stderr
