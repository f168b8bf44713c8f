"""TLS on both sides: terminating client connections and verifying upstream nodes.

Certificates come from a throwaway CA (trustme); nodes are real TLS servers on
loopback, so handshakes, SNI, ALPN and verification all happen for real.
"""

from __future__ import annotations

import _ssl
import datetime
import json
import logging
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from quiver.config.models import Target
from quiver.proxy.tls import certificate_names, warn_unverified
from tests.support.problems import assert_problem
from tests.support.process import catch_all_config, serving, write_config
from tests.support.proxy import Client, RunningProxy
from tests.support.upstream import Conn, Upstream, echo

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class CertFiles:
    cert: Path  # chain, leaf first
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    ca_file: Path
    a: CertFiles  # a.test
    b: CertFiles  # b.test
    wildcard: CertFiles  # *.wild.test
    node: CertFiles  # 127.0.0.1, localhost, node.test
    client: CertFiles  # a client certificate for mutual TLS
    node_cert: trustme.LeafCert


def _write(directory: Path, name: str, leaf: trustme.LeafCert) -> CertFiles:
    files = CertFiles(directory / f"{name}.pem", directory / f"{name}.key")
    files.cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(files.key))
    return files


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    node_cert = ca.issue_cert("127.0.0.1", "localhost", "node.test")
    return Pki(
        ca=ca,
        ca_file=ca_file,
        a=_write(directory, "a", ca.issue_cert("a.test")),
        b=_write(directory, "b", ca.issue_cert("b.test")),
        wildcard=_write(directory, "wild", ca.issue_cert("*.wild.test")),
        node=_write(directory, "node", node_cert),
        client=_write(directory, "client", ca.issue_cert("client.test")),
        node_cert=node_cert,
    )


def client_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pki.ca.configure_trust(context)
    context.set_alpn_protocols(["http/1.1"])
    return context


def tls_socket(sock: socket.socket) -> ssl.SSLSocket:
    """``sock``, which TLS wraps on this connection."""
    assert isinstance(sock, ssl.SSLSocket)
    return sock


def peer_dns_names(client: Client) -> list[str]:
    cert = tls_socket(client.sock).getpeercert()
    assert cert, "no verified peer certificate"
    # the stubs give every field of a certificate one union type
    names = cast(tuple[tuple[str, str], ...], cert["subjectAltName"])
    return [value for kind, value in names if kind == "DNS"]


# -- terminating TLS --------------------------------------------------------------------------


def tls_listen_config(upstream_url: str, *certs: CertFiles, min_version: str = "1.2") -> str:
    certificates = [{"cert": str(files.cert), "key": str(files.key)} for files in certs]
    tls = {"min_version": min_version, "certificates": certificates}
    # JSON is YAML: the listen list in flow style
    return catch_all_config(
        upstream_url, listen=json.dumps([{"address": "127.0.0.1:0", "tls": tls}])
    )


@pytest.fixture
def tls_proxy(pki: Pki, echo_upstream: Upstream) -> Iterator[RunningProxy]:
    with RunningProxy(tls_listen_config(echo_upstream.url, pki.a, pki.b, pki.wildcard)) as proxy:
        yield proxy


def test_https_request_is_proxied_with_alpn_http11(pki: Pki, tls_proxy: RunningProxy) -> None:
    assert tls_proxy.url.startswith("https://127.0.0.1:")
    with Client(tls_proxy.port, tls=client_context(pki), server_hostname="a.test") as client:
        assert tls_socket(client.sock).selected_alpn_protocol() == "http/1.1"
        assert tls_socket(client.sock).version() in ("TLSv1.2", "TLSv1.3")
        response = client.request("GET", "/secure", host="a.test")
        assert response.status == 200
        sent = response.json()
        assert sent["path"] == "/secure"
        headers = {name.lower(): value for name, value in sent["headers"]}
        assert headers["x-forwarded-proto"] == "https"
        # keep-alive works over TLS too
        assert client.request("GET", "/again", host="a.test").json()["path"] == "/again"


@pytest.mark.parametrize(
    ("server_name", "expected"),
    [
        ("a.test", ["a.test"]),
        ("b.test", ["b.test"]),
        ("B.Test", ["b.test"]),
        ("x.wild.test", ["*.wild.test"]),
    ],
)
def test_certificate_is_chosen_by_sni(
    pki: Pki, tls_proxy: RunningProxy, server_name: str, expected: list[str]
) -> None:
    with Client(tls_proxy.port, tls=client_context(pki), server_hostname=server_name) as client:
        assert peer_dns_names(client) == expected
        assert client.request("GET", "/", host=server_name).status == 200


def test_sni_choice_does_not_need_cpythons_private_certificate_decoder(
    pki: Pki, echo_upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    # certificate names are read with cryptography.x509, not ssl._ssl._test_decode_cert
    monkeypatch.delattr(_ssl, "_test_decode_cert", raising=False)
    config = tls_listen_config(echo_upstream.url, pki.a, pki.b, pki.wildcard)
    with (
        RunningProxy(config) as proxy,
        Client(proxy.port, tls=client_context(pki), server_hostname="x.wild.test") as client,
    ):
        assert peer_dns_names(client) == ["*.wild.test"]
        assert client.request("GET", "/", host="x.wild.test").status == 200


def test_certificate_names_are_the_alt_names_else_the_common_name(pki: Pki, tmp_path: Path) -> None:
    assert certificate_names(str(pki.b.cert)) == ["b.test"]  # a chain file: the leaf's
    assert certificate_names(str(pki.node.cert)) == ["localhost", "node.test"]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "legacy.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "cn-only.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    assert certificate_names(str(path)) == ["legacy.test"]


@pytest.mark.parametrize("server_name", ["unknown.test", None])
def test_unknown_or_missing_sni_gets_the_first_certificate(
    pki: Pki, tls_proxy: RunningProxy, server_name: str | None
) -> None:
    context = client_context(pki)
    context.check_hostname = False  # still verified against the CA, whatever the name
    with Client(tls_proxy.port) as client:
        # wrapped here because Client sends "localhost" when given no name
        client.sock = context.wrap_socket(client.sock, server_hostname=server_name)
        assert peer_dns_names(client) == ["a.test"]
        assert client.request("GET", "/").status == 200


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_1_1_is_refused(pki: Pki, tls_proxy: RunningProxy) -> None:
    context = client_context(pki)
    context.minimum_version = ssl.TLSVersion.TLSv1_1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client speak TLS 1.1 at all
    _assert_client_can_speak(pki, context, "TLSv1.1")
    with pytest.raises(ssl.SSLError):
        Client(tls_proxy.port, tls=context, server_hostname="a.test")


def test_min_version_1_3_refuses_tls_1_2(pki: Pki, echo_upstream: Upstream) -> None:
    with RunningProxy(tls_listen_config(echo_upstream.url, pki.a, min_version="1.3")) as proxy:
        context = client_context(pki)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError):
            Client(proxy.port, tls=context, server_hostname="a.test")
        with Client(proxy.port, tls=client_context(pki), server_hostname="a.test") as client:
            assert tls_socket(client.sock).version() == "TLSv1.3"
            assert client.request().status == 200


def test_plain_http_to_a_tls_port_is_answered_400_then_closed(
    tls_proxy: RunningProxy, echo_upstream: Upstream
) -> None:
    with Client(tls_proxy.port, timeout=5) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        response = client.read_response()
        problem = assert_problem(response, 400)
        assert "plain HTTP request sent to HTTPS port" in problem["detail"]
        assert response.header("connection") == "close"
        assert client.wait_closed() == b""
    assert echo_upstream.requests == []


def test_tls_port_closes_a_connection_that_sends_nothing(pki: Pki, echo_upstream: Upstream) -> None:
    config = tls_listen_config(echo_upstream.url, pki.a) + "limits: {header_timeout: 0.2}\n"
    with RunningProxy(config) as proxy, Client(proxy.port, timeout=5) as client:
        assert client.wait_closed() == b""
        # the port still speaks TLS to the next client
        with Client(proxy.port, tls=client_context(pki), server_hostname="a.test") as other:
            assert other.request("GET", "/", host="a.test").status == 200


def _assert_client_can_speak(pki: Pki, context: ssl.SSLContext, version: str) -> None:
    """Guards the refusal tests: the client itself must be able to offer ``version``."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    pki.node_cert.configure_cert(server)

    def accept_only(conn: Conn) -> None:
        conn.read_request()

    with (
        Upstream(accept_only, tls=server) as permissive,
        Client(permissive.port, tls=context, server_hostname="localhost") as client,
    ):
        assert tls_socket(client.sock).version() == version


# -- verifying upstream nodes -----------------------------------------------------------------


def node_context(
    pki: Pki, *, sni_seen: list[str | None] | None = None, require_client_cert: bool = False
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pki.node_cert.configure_cert(context)
    if sni_seen is not None:

        def record(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
            sni_seen.append(name)

        context.sni_callback = record
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        pki.ca.configure_trust(context)
    return context


def https_target_config(url: str, **target: object) -> str:
    extra = "".join(f"\n    {key}: {json.dumps(value)}" for key, value in target.items())
    return f"""\
listen: 127.0.0.1:0
targets:
  - name: secure
    url: {url}{extra}
routes:
  - name: all
    paths: ["/"]
    target: secure
"""


def get(proxy: RunningProxy, path: str = "/") -> tuple[int, Any, str | None]:
    with Client(proxy.port) as client:
        response = client.request("GET", path)
    return response.status, response.json(), response.header("Content-Type")


@pytest.fixture
def clean_ca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system store as installed, whatever the developer's shell points it to."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def test_node_verified_against_tls_ca_file(pki: Pki, clean_ca_env: None) -> None:
    with Upstream(echo, tls=node_context(pki)) as node:
        config = https_target_config(node.url, tls_ca_file=str(pki.ca_file))
        with RunningProxy(config) as proxy:
            status, body, _ = get(proxy, "/over-tls")
            assert (status, body["path"]) == (200, "/over-tls")
            headers = {name.lower(): value for name, value in body["headers"]}
            assert headers["host"] == f"127.0.0.1:{node.port}"


def test_node_signed_by_an_unknown_ca_is_refused_with_502(
    pki: Pki, clean_ca_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        Upstream(echo, tls=node_context(pki)) as node,
        RunningProxy(https_target_config(node.url)) as proxy,
    ):
        status, body, content_type = get(proxy)
        assert status == 502
        assert content_type == "application/problem+json"
        assert body["status"] == 502
        detail = str(body["detail"])
        assert "TLS" in detail
        assert "certificate" in detail.lower()
        # clients hear of the target, never the node's address; the log has it
        assert f"127.0.0.1:{node.port}" not in detail
        assert "target 'secure'" in detail
        assert f"127.0.0.1:{node.port}" in caplog.text
        assert node.requests == []


def test_system_store_is_read_from_ssl_cert_file(
    pki: Pki, clean_ca_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The upstream context is built when the config is compiled: set the variable first.
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    with (
        Upstream(echo, tls=node_context(pki)) as node,
        RunningProxy(https_target_config(node.url)) as proxy,
    ):
        status, body, _ = get(proxy, "/trusted")
        assert (status, body["path"]) == (200, "/trusted")


def test_hostname_mismatch_is_refused_with_502(
    pki: Pki, clean_ca_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    with Upstream(echo, tls=node_context(pki)) as node:
        config = https_target_config(
            node.url, tls_ca_file=str(pki.ca_file), tls_server_name="other.test"
        )
        with RunningProxy(config) as proxy:
            status, body, content_type = get(proxy)
            assert (status, content_type) == (502, "application/problem+json")
            detail = str(body["detail"])
            assert "certificate" in detail.lower()
            # the log says which check failed (the name is wrong); the client, which
            # has no business knowing the node's names, is told the target's only
            assert "other.test" not in detail
            assert "other.test" in caplog.text
            assert node.requests == []


def test_tls_verify_false_accepts_any_certificate_and_warns_at_start(
    pki: Pki, clean_ca_env: None, tmp_path: Path
) -> None:
    with Upstream(echo, tls=node_context(pki)) as node:
        path = write_config(tmp_path, https_target_config(node.url, tls_verify=False))
        with serving(path) as proxy, Client(proxy.port) as client:
            response = client.request("GET", "/unverified")
            assert response.status == 200
            assert response.json()["path"] == "/unverified"
            warnings = [line for line in proxy.stderr.splitlines() if " WARNING " in line]
            assert len(warnings) == 1, proxy.stderr
            assert "target 'secure' does not verify its nodes' TLS certificates" in warnings[0]


def test_unverified_warning_only_for_targets_with_https_nodes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    targets = [
        Target.model_validate(data)
        for data in (
            {"name": "plain", "url": "http://127.0.0.1:9", "tls_verify": False},
            {"name": "checked", "url": "https://127.0.0.1:9"},
            {
                "name": "loose",
                "nodes": [{"url": "http://127.0.0.1:9"}, {"url": "https://127.0.0.1:10"}],
                "tls_verify": False,
            },
        )
    ]
    with caplog.at_level(logging.WARNING, logger="quiver.tls"):
        warn_unverified(targets)
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    assert "'loose'" in caplog.records[0].getMessage()


def test_sni_sent_to_the_node_is_the_url_host(pki: Pki, clean_ca_env: None) -> None:
    seen: list[str | None] = []
    with Upstream(echo, tls=node_context(pki, sni_seen=seen)) as node:
        url = f"https://localhost:{node.port}"
        with RunningProxy(https_target_config(url, tls_ca_file=str(pki.ca_file))) as proxy:
            status, body, _ = get(proxy)
            assert status == 200
    assert seen == ["localhost"]
    headers = {name.lower(): value for name, value in body["headers"]}
    assert headers["host"] == f"localhost:{node.port}"


def test_sni_sent_to_the_node_is_tls_server_name_when_set(pki: Pki, clean_ca_env: None) -> None:
    seen: list[str | None] = []
    with Upstream(echo, tls=node_context(pki, sni_seen=seen)) as node:
        config = https_target_config(
            node.url, tls_ca_file=str(pki.ca_file), tls_server_name="node.test"
        )
        with RunningProxy(config) as proxy:
            status, body, _ = get(proxy)
            assert status == 200
    assert seen == ["node.test"]
    # the Host header still names the node as its URL says
    headers = {name.lower(): value for name, value in body["headers"]}
    assert headers["host"] == f"127.0.0.1:{node.port}"


def test_node_requiring_a_client_certificate_refuses_a_proxy_without_one(
    pki: Pki, clean_ca_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    context = node_context(pki, require_client_cert=True)
    with Upstream(echo, tls=context) as node:
        config = https_target_config(node.url, tls_ca_file=str(pki.ca_file))
        with RunningProxy(config) as proxy:
            status, body, content_type = get(proxy)
            assert (status, content_type) == (502, "application/problem+json")
            # the node's TLS alert is the reason, not a bare "closed the connection"
            assert "TLS" in str(body["detail"])
            assert "certificate" in caplog.text.lower()
            assert node.requests == []


def test_client_certificate_is_presented_to_the_node(pki: Pki, clean_ca_env: None) -> None:
    peers: list[dict[str, Any]] = []

    def record_peer(conn: Conn) -> None:
        cert = tls_socket(conn.sock).getpeercert()
        assert cert is not None, "the node requires a client certificate"
        peers.append(cert)
        echo(conn)

    context = node_context(pki, require_client_cert=True)
    with Upstream(record_peer, tls=context) as node:
        config = https_target_config(
            node.url,
            tls_ca_file=str(pki.ca_file),
            tls_client_cert=str(pki.client.cert),
            tls_client_key=str(pki.client.key),
        )
        with RunningProxy(config) as proxy:
            status, body, _ = get(proxy, "/mutual")
            assert (status, body["path"]) == (200, "/mutual")
    [peer] = peers
    assert ("DNS", "client.test") in peer["subjectAltName"]


def test_pooled_tls_connection_is_reused(pki: Pki, clean_ca_env: None) -> None:
    with Upstream(echo, tls=node_context(pki)) as node:
        config = https_target_config(node.url, tls_ca_file=str(pki.ca_file))
        with RunningProxy(config) as proxy, Client(proxy.port) as client:
            for index in range(5):
                assert client.request("GET", f"/n{index}").status == 200
        assert node.accepted == 1
