"""The pages in real processes: `quiver serve` mounts them beside the admin API, and
over HTTPS their cookies are Secure."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import httpx
import trustme

from quiver.accounts.users import create_user
from quiver.store import open_store
from tests.support.process import QuiverProcess
from tests.web.forms import PASSWORD, csrf_of
from tests.web.process import admin_with_pages


def test_over_https_the_session_cookie_is_secure(tmp_path: Path) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(cert)
    certificate.private_key_pem.write_to_path(key)
    store_path = tmp_path / "quiver.db"
    store = open_store(str(store_path))
    try:
        create_user(store, "root@example.com", PASSWORD, is_admin=True)
    finally:
        store.close()
    context = ssl.create_default_context()
    authority.configure_trust(context)
    with admin_with_pages(store_path, (str(cert), str(key))) as port:
        base = f"https://127.0.0.1:{port}"
        with httpx.Client(base_url=base, verify=context, headers={"Origin": base}) as client:
            page = client.get("/console/signin")
            assert "Secure" in page.headers["set-cookie"]
            signed = client.post(
                "/console/signin",
                data={"csrf": csrf_of(page), "email": "root@example.com", "password": PASSWORD},
            )
            assert signed.status_code == 303
            cookie = signed.headers.get_list("set-cookie")
            session = next(value for value in cookie if value.startswith("quiver_session="))
            assert "Secure" in session and "HttpOnly" in session
            assert client.get("/console").status_code == 200


def test_quiver_serve_serves_the_portal_and_console_beside_the_admin_api(tmp_path: Path) -> None:
    args = ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
    args += ["--run-dir", str(tmp_path / "run")]
    env: dict[str, str | None] = {"QUIVER_CONFIG": None, "QUIVER_ADMIN_TOKEN": None}
    with QuiverProcess(args, cwd=tmp_path, env=env) as proc:
        proc.wait_listening()
        [ready] = proc.wait_for(re.compile(r"admin API \(pid \d+\) ready at (http://\S+)"))
        with httpx.Client(base_url=ready.group(1), timeout=30) as client:
            for path in ("/portal/signin", "/portal/signup", "/console/signin"):
                page = client.get(path)
                assert page.status_code == 200, (path, page.text[:300])
                assert page.headers["content-type"].startswith("text/html")
            assert client.get("/portal").headers["location"] == "/portal/signin"
        assert proc.stop() == 0
