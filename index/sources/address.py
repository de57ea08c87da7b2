"""Which network addresses a web source may reach.

Every host is resolved before a connection is made, and the connection goes to
the address that was checked (index/sources/fetch.py pins it), so a name cannot be
turned toward a cloud's metadata service or a private network between the check
and the connect. Link-local and metadata addresses are never fetched; loopback
and private ones only for a source that was itself on such an address (an
intranet's documentation), never for one that was on the public internet.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

# host, port -> the addresses to try, in order. Injectable, so tests can make a
# name resolve anywhere without sending anything there.
Resolver = Callable[[str, int], list[str]]

# Instance-metadata services: AWS, GCP, Azure and OpenStack (169.254.169.254),
# AWS over IPv6 (fd00:ec2::254), Alibaba Cloud (100.100.100.200, outside any
# range ipaddress calls private).
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system's resolver gives for `host` (an IP literal resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_inward(address: str) -> bool:
    """Whether `address` is loopback, private or unspecified (this machine or its local network)."""
    ip = _ip(address)
    return ip is None or ip.is_loopback or ip.is_private or ip.is_unspecified


def refusal(address: str, inward: bool) -> str | None:
    """Why `address` may not be fetched for a source that is `inward` (or not), or None if it may:
    the address and what it is, to follow "HOST resolves to"."""
    ip = _ip(address)
    if ip is None:
        return f"{address}, not an IP address"
    if ip in METADATA or ip.is_link_local:
        return f"{ip}, a link-local or cloud metadata address, which is never fetched"
    if ip.is_multicast or (ip.is_reserved and not ip.is_private):
        return f"{ip}, not a unicast address"
    if not inward and (ip.is_loopback or ip.is_private or ip.is_unspecified):
        return (f"{ip}, a private or loopback address, while the source was on a public one "
                "(remove the source and add it again if it moved to an intranet)")
    return None


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    # ::ffff:169.254.169.254 reaches the same host as 169.254.169.254.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
