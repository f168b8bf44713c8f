"""``run_admin`` as a real process: it says where it listens, refuses unsafe starts,
and never logs a token or its hash."""

from __future__ import annotations

import hashlib
import os
import select
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import trustme

ENV_TOKEN = "qv_" + "e" * 43
_SCRIPT = """
import sys
from quiver.admin import AdminSettings, run_admin
from quiver.logconfig import configure_logging
configure_logging()
cert, key, ready = sys.argv[3] or None, sys.argv[4] or None, sys.argv[5]
run_admin(AdminSettings(store_url=sys.argv[1], listen=sys.argv[2], tls_cert=cert, tls_key=key,
                        ready_fd=int(ready) if ready else None))
"""


def _env(token: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "QUIVER_ADMIN_TOKEN"}
    if token is not None:
        env["QUIVER_ADMIN_TOKEN"] = token
    return env


@contextmanager
def admin_process(
    store: Path,
    listen: str = "127.0.0.1:0",
    *,
    token: str | None = ENV_TOKEN,
    tls: tuple[str, str] | None = None,
) -> Iterator[tuple[int, list[str]]]:
    """The port of a running admin process and, once it has stopped, its log lines."""
    read_end, write_end = os.pipe()
    cert, key = tls or ("", "")
    process = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(store), listen, cert, key, str(write_end)],
        env=_env(token),
        pass_fds=(write_end,),
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write_end)
    log: list[str] = []
    try:
        ready, _, _ = select.select([read_end], [], [], 30)
        assert ready, "the admin process did not get ready"
        port = int(os.read(read_end, 64).decode().strip())
        yield port, log
    finally:
        os.close(read_end)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        log.extend(stderr.splitlines())


def test_it_says_where_it_listens_and_never_logs_tokens(tmp_path: Path) -> None:
    store = tmp_path / "admin.db"
    with (
        admin_process(store) as (port, log),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        root = {"Authorization": f"Bearer {ENV_TOKEN}"}
        health = client.get("/health")
        assert health.status_code == 200
        assert "server" not in health.headers, "nothing says what serves the API"
        created = client.post("/tokens", json={"name": "ci", "role": "editor"}, headers=root)
        token = created.json()["token"]
        as_ci = {"Authorization": f"Bearer {token}"}
        assert (
            client.post(
                "/targets", json={"name": "a", "url": "http://127.0.0.1:1"}, headers=as_ci
            ).status_code
            == 201
        )
        assert (
            client.get("/targets", headers={"Authorization": "Bearer qv_wrong"}).status_code == 401
        )
        assert client.get("/tokens", headers=root).status_code == 200
    text = "\n".join(log)
    assert f"admin API listening on http://127.0.0.1:{port}" in text
    for secret in (ENV_TOKEN, token, "qv_wrong"):
        assert secret not in text
        assert hashlib.sha256(secret.encode()).hexdigest() not in text


def test_the_seeded_token_keeps_working_after_a_restart(tmp_path: Path) -> None:
    store = tmp_path / "admin.db"
    with admin_process(store) as (port, _):
        pass
    with admin_process(store, token=None) as (port, _):
        headers = {"Authorization": f"Bearer {ENV_TOKEN}"}
        response = httpx.get(f"http://127.0.0.1:{port}/tokens", headers=headers, timeout=30)
        assert [item["name"] for item in response.json()["data"]] == ["admin-env"]


def _refused(store: Path, listen: str, token: str | None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(store), listen, "", "", ""],
        env=_env(token),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    return result.stderr


def test_it_refuses_to_start_off_loopback_without_tls(tmp_path: Path) -> None:
    stderr = _refused(tmp_path / "admin.db", "0.0.0.0:0", ENV_TOKEN)
    assert "admin_listen 0.0.0.0:0" in stderr and "TLS" in stderr
    assert "Traceback" not in stderr


def test_it_refuses_to_start_without_any_token(tmp_path: Path) -> None:
    stderr = _refused(tmp_path / "admin.db", "127.0.0.1:0", None)
    assert "admin_listen" in stderr and "QUIVER_ADMIN_TOKEN" in stderr
    assert "Traceback" not in stderr


def test_off_loopback_with_tls_it_serves_https(tmp_path: Path) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    cert, key, ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    certificate.cert_chain_pems[0].write_to_path(str(cert))
    certificate.private_key_pem.write_to_path(str(key))
    authority.cert_pem.write_to_path(str(ca))
    with admin_process(tmp_path / "admin.db", "0.0.0.0:0", tls=(str(cert), str(key))) as (
        port,
        log,
    ):
        context = ssl.create_default_context(cafile=str(ca))
        response = httpx.get(f"https://127.0.0.1:{port}/health", verify=context, timeout=30)
        assert response.json() == {"status": "ok"}
    assert f"admin API listening on https://0.0.0.0:{port}" in "\n".join(log)


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999"])
def test_a_bad_listen_address_is_refused(tmp_path: Path, listen: str) -> None:
    assert "admin_listen" in _refused(tmp_path / "admin.db", listen, ENV_TOKEN)
