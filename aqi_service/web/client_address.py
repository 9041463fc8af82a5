"""Which address a request comes from: the peer, or what a trusted reverse proxy says.

A forwarding header is believed only when the peer is one of ``[http] trusted_proxies``;
then its hops are read from the right (each proxy appends the address it received the
request from), and the first hop that is not itself a trusted proxy is the client. Hops
to the left of it were written by the client and are never looked at, so a forged
``X-Forwarded-For`` cannot choose the address that the failure limiter counts or that the
audit log records. Only the one header the proxy sets (``forwarded_header``) is read: a
proxy that appends to ``X-Forwarded-For`` passes a client's ``Forwarded`` through
untouched.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from aiohttp import web

from aqi_service.config import HttpConfig

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_FOR = re.compile(r'(?:^|;)\s*for\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)', re.IGNORECASE)
MAX_HOPS = 32
"""Hops read at most (a longer chain is cut: the client is then the last trusted hop)."""


class ClientAddresses:
    """Resolves a request's client address under the configured trusted proxies."""

    def __init__(self, cfg: HttpConfig) -> None:
        self.trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(block, strict=False) for block in cfg.trusted_proxies)
        self.header = cfg.forwarded_header.lower()

    def is_trusted(self, address: str) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        ip = parse_ip(address)
        return ip is not None and any(ip in net for net in self.trusted)

    def client_of(self, request: web.BaseRequest) -> str:
        """The client's address (text), ``unknown`` when the peer has none."""
        peer = request.remote or "unknown"
        if not self.trusted or not self.is_trusted(peer):
            return peer
        values = request.headers.getall(self.header, [])
        hops = forwarded_for(values) if self.header == "forwarded" else x_forwarded_for(values)
        return self.rightmost_untrusted(hops, peer)

    def rightmost_untrusted(self, hops: Sequence[str], peer: str) -> str:
        """The first hop from the right that is not a trusted proxy (``peer`` if all are)."""
        client = peer
        for hop in list(reversed(hops))[:MAX_HOPS]:
            ip = parse_ip(hop)
            if ip is None:
                # written by a trusted proxy (it reached us through them), but not an
                # address: "unknown" or an obfuscated name (RFC 7239 §6); count it as is
                return hop[:64] or client
            client = str(ip)
            if not any(ip in net for net in self.trusted):
                return client
        return client


def x_forwarded_for(values: Iterable[str]) -> list[str]:
    """The hops of ``X-Forwarded-For`` field lines, left to right."""
    return [hop.strip() for value in values for hop in value.split(",") if hop.strip()]


def forwarded_for(values: Iterable[str]) -> list[str]:
    """The ``for=`` parameters of ``Forwarded`` field lines (RFC 7239), left to right."""
    out = []
    for value in values:
        for element in value.split(","):
            match = _FOR.search(element)
            out.append(match[1].strip('"') if match else "unknown")
    return out


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a hop: ``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]:80``, ``::1``."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def limiter_key(address: str) -> str:
    """The key failures are counted under: an IPv4 address, or an IPv6 address's /64.

    One IPv6 subscriber usually holds a whole /64, so counting single addresses would let
    one attacker rotate through 2^64 of them.
    """
    ip = parse_ip(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip) if ip is not None else address[:64]
