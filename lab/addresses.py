"""Which addresses the lab may use: its own subnet, and the documentation ranges for spoofing."""

from __future__ import annotations

import ipaddress

# RFC 5737: never routed on the internet. A spoofed source comes from these or the lab's subnet.
DOC_RANGES = tuple(ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))


def network(text: str) -> ipaddress.IPv4Network:
    net = ipaddress.ip_network(text, strict=True)
    if not isinstance(net, ipaddress.IPv4Network):
        raise ValueError(f"{text}: an IPv4 network is expected")
    if not net.is_private or net.prefixlen < 16 or net.prefixlen > 29:
        raise ValueError(f"{text}: expected a private IPv4 network between /16 and /29")
    return net


def address(text: str) -> ipaddress.IPv4Address:
    addr = ipaddress.ip_address(text)
    if not isinstance(addr, ipaddress.IPv4Address):
        raise ValueError(f"{text}: an IPv4 address is expected")
    return addr


def host_in(net: ipaddress.IPv4Network, text: str) -> ipaddress.IPv4Address:
    """`text` as an address of a host of `net` (not its network or broadcast address)."""
    addr = address(text)
    if addr not in net or addr in (net.network_address, net.broadcast_address):
        raise ValueError(f"{text} is not a host address of {net}")
    return addr


def spoofable(net: ipaddress.IPv4Network, text: str) -> ipaddress.IPv4Address:
    """`text` as a spoofed source: in the lab's subnet or a documentation range."""
    addr = address(text)
    if addr in net or any(addr in r for r in DOC_RANGES):
        return addr
    raise ValueError(f"{text}: a spoofed source must lie in {net} or in {', '.join(map(str, DOC_RANGES))}")


def mac_for(addr: ipaddress.IPv4Address) -> str:
    """A locally administered MAC derived from the address, so tools that need one know it."""
    b = addr.packed
    return "02:4a:4c:{:02x}:{:02x}:{:02x}".format(*b[1:])
