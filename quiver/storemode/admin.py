"""The admin API as the master's sidecar: its own child process, never a worker's.

The master forks it once the workers are up, restarts it with backoff when it
dies and stops it with the workers (quiver.proxy.supervisor.Sidecar).  The child
imports the admin application only once forked: the master and the workers never
load FastAPI.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from quiver.config.models import split_address
from quiver.logconfig import tag_process


@dataclass(frozen=True)
class AdminSidecar:
    store_url: str
    listen: str
    #: file mode: the config file the admin API shows (read-only); None in store mode
    config_path: str | None = None

    @property
    def name(self) -> str:
        return "admin API"

    def run(self, ready_fd: int) -> None:
        tag_process("admin")
        admin = importlib.import_module("quiver.admin")
        settings = admin.AdminSettings(
            store_url=self.store_url,
            listen=self.listen,
            config_path=self.config_path,
            ready_fd=ready_fd,
        )
        admin.run_admin(settings)

    def url(self, port: int) -> str:
        host, _ = split_address(self.listen)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"
