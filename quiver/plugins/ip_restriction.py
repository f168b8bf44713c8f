"""``ip-restriction``: let clients through, or refuse them (403), by IP address or network."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Annotated, NamedTuple

from pydantic import AfterValidator, Field, model_validator

from quiver.errors import Forbidden
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Verdicts are remembered per address text: clients and proxies repeat, so the common
# request costs one dict lookup.  The bound keeps a flood of distinct (possibly forged)
# X-Forwarded-For entries from growing memory; the oldest verdict goes first.
_CACHE_SIZE = 1024
_LONGEST_ADDRESS = 64  # longer texts (IPv6 with a zone index) are checked, not cached


def parse_network(text: str) -> Network:
    """``text`` as a network: an address alone is a network of that one address.

    IPv4-mapped IPv6 networks (``::ffff:10.0.0.0/104``) become the IPv4 network they
    map, because clients with mapped addresses are matched as IPv4 ones.
    """
    if "%" in text:
        raise ValueError(f"{text!r}: a zone index (%...) is not supported")
    try:
        network = ipaddress.ip_network(text)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or CIDR network") from exc
        raise ValueError(f"{text!r} has host bits set; did you mean '{loose}'?") from exc
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def _checked(text: str) -> str:
    parse_network(text)
    return text


CIDR = Annotated[str, AfterValidator(_checked)]


class IpRestrictionConfig(PluginConfig):
    allow: list[CIDR] = Field(
        default_factory=list,
        description="Addresses or CIDR networks (IPv4 or IPv6) let through; when set, "
        "every other client is refused.",
    )
    deny: list[CIDR] = Field(
        default_factory=list,
        description="Addresses or CIDR networks refused, even when `allow` lists them.",
    )
    trusted_proxies: list[CIDR] = Field(
        default_factory=list,
        description="Addresses or CIDR networks of the proxies in front of the gateway, "
        "whose X-Forwarded-For header names the client; from other peers it is ignored.",
    )

    @model_validator(mode="after")
    def _some_rule(self) -> IpRestrictionConfig:
        if not self.allow and not self.deny:
            raise ValueError("set at least one address or network in 'allow' or 'deny'")
        return self


class _Verdict(NamedTuple):
    trusted: bool  # a trusted proxy: look behind it in X-Forwarded-For
    allowed: bool


class NetworkSet:
    """Networks grouped by family and prefix length: membership costs one set
    lookup per distinct prefix length, however many networks are listed."""

    def __init__(self, networks: Iterable[Network]) -> None:
        by_length: dict[tuple[int, int], set[int]] = {}
        for net in networks:
            shift = net.max_prefixlen - net.prefixlen
            by_length.setdefault((net.version, shift), set()).add(int(net.network_address) >> shift)
        self.groups = tuple(
            (version, shift, frozenset(prefixes))
            for (version, shift), prefixes in by_length.items()
        )

    def __contains__(self, address: Address) -> bool:
        value, version = int(address), address.version
        return any(v == version and value >> s in prefixes for v, s, prefixes in self.groups)


def parse_address(text: bytes) -> Address | None:
    """The address ``text`` names (mapped IPv4 unmapped), or None when it names none."""
    try:
        address = ipaddress.ip_address(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class IpRestriction(Plugin[IpRestrictionConfig]):
    """Refuses requests with 403 by client IP address. A client in `deny` is refused
    even when `allow` lists it; when `allow` is set, every client outside it is refused.
    Entries are single addresses or CIDR networks, IPv4 or IPv6; a client connecting
    with an IPv4-mapped IPv6 address (::ffff:192.0.2.1) is matched as the IPv4 address.
    The client is the TCP peer, unless the peer is in `trusted_proxies`: then
    X-Forwarded-For is read from the right, skipping the addresses of trusted proxies,
    and the first other address is the client. If the walk runs out of addresses, or
    meets an entry that is not an IP address (such as "unknown", or one with a port),
    the last trusted proxy reached is checked in place of the client. From a peer that
    is not a trusted proxy, X-Forwarded-For is ignored. A peer whose address cannot be
    read is refused. The refusal names the client address, never the configured lists.
    """

    name = "ip-restriction"
    priority = 3000
    Config = IpRestrictionConfig

    def __init__(self, config: IpRestrictionConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.allow = NetworkSet(map(parse_network, config.allow)) if config.allow else None
        self.deny = NetworkSet(map(parse_network, config.deny))
        self.trusted = NetworkSet(map(parse_network, config.trusted_proxies))
        self.verdicts: dict[bytes, _Verdict] = {}

    def access(self, request: PluginRequest) -> None:
        client, verdict = self.client(request)
        if verdict is None:
            raise Forbidden("the client address could not be determined")
        if not verdict.allowed:
            shown = client.partition(b"%")[0].decode("ascii")  # without any zone index
            raise Forbidden(f"client address {shown} is not allowed")

    def client(self, request: PluginRequest) -> tuple[bytes, _Verdict | None]:
        """The client's address and its verdict (None when the peer's is unreadable)."""
        client = request.client_ip
        verdict = self.verdict(client)
        if verdict is None or not verdict.trusted:
            return client, verdict  # the common case never looks at the headers
        forwarded = request.get(b"x-forwarded-for")
        if forwarded:
            # Each proxy appends the address it received from; anything left of the
            # first untrusted hop may have been written by the client itself.
            for entry in reversed(forwarded.split(b",")):
                hop = entry.strip(b" \t")
                hop_verdict = self.verdict(hop)
                if hop_verdict is None:
                    break  # unreadable: the last trusted proxy stands for the client
                client, verdict = hop, hop_verdict
                if not verdict.trusted:
                    break
        return client, verdict

    def verdict(self, text: bytes) -> _Verdict | None:
        """How the address ``text`` is treated; None when it is not an IP address."""
        verdict = self.verdicts.get(text)
        if verdict is not None:
            return verdict
        address = parse_address(text)
        if address is None:
            return None
        allowed = address not in self.deny and (self.allow is None or address in self.allow)
        verdict = _Verdict(trusted=address in self.trusted, allowed=allowed)
        if len(text) <= _LONGEST_ADDRESS:
            verdicts = self.verdicts
            if len(verdicts) >= _CACHE_SIZE:
                del verdicts[next(iter(verdicts))]
            verdicts[text] = verdict
        return verdict
