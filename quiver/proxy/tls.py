"""TLS contexts: terminating client connections and verifying upstream nodes."""

from __future__ import annotations

import logging
import ssl

from cryptography import x509
from cryptography.x509.oid import NameOID

from quiver.config.models import ListenTls, Target

log = logging.getLogger("quiver.tls")


def server_context(settings: ListenTls) -> ssl.SSLContext:
    """Certificates chosen by SNI (the first is the default), ALPN http/1.1."""
    contexts = [
        _single_certificate(settings, cert.cert, cert.key) for cert in settings.certificates
    ]
    default = contexts[0]
    if len(contexts) > 1:
        by_name = _contexts_by_name(settings, contexts)

        def choose(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            if name:
                chosen = by_name.get(name.lower()) or by_name.get(_wildcard_of(name.lower()))
                if chosen is not None:
                    sock.context = chosen
            return None

        default.sni_callback = choose
    return default


def _single_certificate(settings: ListenTls, cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if settings.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(cert, key)
    return context


def _contexts_by_name(
    settings: ListenTls, contexts: list[ssl.SSLContext]
) -> dict[str, ssl.SSLContext]:
    by_name: dict[str, ssl.SSLContext] = {}
    for spec, context in zip(settings.certificates, contexts, strict=True):
        for name in certificate_names(spec.cert):
            by_name.setdefault(name.lower(), context)
    return by_name


def certificate_names(path: str) -> list[str]:
    """DNS names a PEM certificate is valid for (subjectAltName, else the CN).

    Of a chain file, the first certificate: the leaf.
    """
    with open(path, "rb") as file:
        cert = x509.load_pem_x509_certificate(file.read())
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        names: list[str] = []
    else:
        names = alt.value.get_values_for_type(x509.DNSName)
    if not names:
        common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        names = [value for attr in common if isinstance(value := attr.value, str)]
    return names


def _wildcard_of(name: str) -> str:
    _, dot, parent = name.partition(".")
    return f"*.{parent}" if dot else name


def upstream_context(target: Target) -> ssl.SSLContext:
    """Verifies the node against the system CA store unless the target says otherwise."""
    context = client_context(target.tls_ca_file)
    if not target.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if target.tls_client_cert:
        context.load_cert_chain(target.tls_client_cert, target.tls_client_key)
    return context


def warn_unverified(targets: list[Target]) -> None:
    for target in targets:
        if not target.tls_verify and any(n.url.startswith("https") for n in target.node_list):
            log.warning(
                "target %r does not verify its nodes' TLS certificates (tls_verify: false); "
                "anyone on the path can impersonate them",
                target.name,
            )


def client_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Verifies a server the gateway calls on its own behalf (a key set, an introspection
    endpoint) against the system CA store, or against ``ca_file`` when given."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context
