"""The admin API as the master's sidecar: its own child process, never a worker's.

The master forks it once the workers are up, restarts it with backoff when it
dies and stops it with the workers (quiver.proxy.supervisor.Sidecar).  The child
imports the admin application only once forked: the master and the workers never
load FastAPI.  It serves the developer portal and the operator console beside the
API (quiver.web).  The portal's "Try it" sends requests to ``portal.gateway_url``,
else to the address the master tells the child its workers accept on
(quiver.admin.gateway).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from quiver.config.models import (
    CallLogSettings,
    MetricsSettings,
    TlsCertificate,
    is_loopback,
    split_address,
)
from quiver.config.webhooks import WebhookSettings
from quiver.logconfig import tag_process
from quiver.plugins.catalog import Catalog
from quiver.proxy.server import BoundAddress
from quiver.storemode.source import UNREACHABLE, reason
from quiver.storemode.urls import shown


@dataclass(frozen=True)
class AdminSidecar:
    store_url: str
    listen: str
    catalog: Catalog
    #: file mode: the config file the admin API shows (read-only); None in store mode
    config_path: str | None = None
    tls: TlsCertificate | None = None
    #: the workers' call spools (``<run_dir>/calls``): the sidecar ingests them
    calls_dir: str | None = None
    call_log: CallLogSettings | None = None
    #: the node's run directory: the sidecar serves the metrics its workers write there
    run_dir: str | None = None
    metrics: MetricsSettings | None = None
    webhooks: WebhookSettings | None = None
    #: ``portal.gateway_url``: where "Try it" reaches the gateway (None: where it listens)
    gateway_url: str | None = None

    @property
    def name(self) -> str:
        return "admin API"

    def run(self, ready_fd: int, proxy: Sequence[BoundAddress]) -> None:
        tag_process("admin")
        from quiver.admin import AdminSettings, run_admin
        from quiver.admin.gateway import Listening, gateway_at
        from quiver.calls import CallLog
        from quiver.web.site import mount_pages
        from quiver.webhooks.sender import DeliverySettings

        kept = self.call_log or CallLogSettings()
        hooks = self.webhooks or WebhookSettings()

        settings = AdminSettings(
            store_url=self.store_url,
            listen=self.listen,
            config_path=self.config_path,
            tls_cert=self.tls.cert if self.tls else None,
            tls_key=self.tls.key if self.tls else None,
            ready_fd=ready_fd,
            calls_dir=self.calls_dir,
            call_log=CallLog(kept.retention, kept.max_rows, kept.rollup_retention),
            run_dir=self.run_dir,
            metrics_public=(self.metrics or MetricsSettings()).public,
            webhooks=DeliverySettings.of(hooks),
            webhook_endpoints=tuple(hooks.endpoints),
            gateway=gateway_at(
                [Listening(address.host, address.port, address.tls) for address in proxy],
                self.gateway_url,
            ),
        )
        try:
            run_admin(settings, self.catalog, pages=mount_pages)
        except UNREACHABLE as exc:  # (one line, not a traceback per restart)
            message = f"config store {shown(self.store_url)} unreachable: {reason(exc)}"
            raise SystemExit(message) from None

    def url(self, port: int) -> str:
        host, _ = split_address(self.listen)
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{shown}:{port}"


def check_admin_listen(address: str, tls: TlsCertificate | None) -> None:
    """Refuse (SystemExit naming admin_listen) an admin address other machines could
    reach without ``admin_tls``: tokens must not cross a network in clear text."""
    host, _ = split_address(address)
    if tls is None and not is_loopback(host):
        raise SystemExit(
            f"quiver: admin_listen {address} is not a loopback address: the admin API "
            "would be reachable from other machines in clear text; set admin_tls (cert "
            "and key) to serve it over HTTPS, or listen on 127.0.0.1"
        )
