"""SSRF guard for provider base URLs.

A tenant who can point a provider at any URL can make the gateway call the cloud metadata
service (169.254.169.254), the loopback admin ports, or the private network. Every http(s) URL
in a tenant's provider config is therefore resolved and refused when *any* address it resolves to
is loopback, link-local, private, carrier-grade NAT, multicast, reserved or unspecified
(IPv4-mapped IPv6 addresses are unwrapped first) — unless a platform admin allowed that network
or host for the tenant (``network.allowPrivate``). Only ``http`` and ``https`` are accepted.

The check runs when the config is stored and again each time the tenant's gateway is built.
It cannot stop a DNS name from changing its answer between the check and the connection
(rebinding); deployments that need that guarantee add an egress proxy or firewall.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from mosaic.errors import Forbidden, InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
URL_KEY = re.compile(r"(?i)(url|uri|endpoint|host)$")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def forbidden_reason(ip: IPAddress) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier-grade NAT"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local"
    return None


class UrlGuard:
    def __init__(self, allow: Iterable[str] = (), resolver: Resolver | None = None) -> None:
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.hosts: set[str] = set()
        for item in allow:
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.hosts.add(item.lower().rstrip("."))
        self.resolver = resolver or system_resolver

    def _allowed(self, ip: IPAddress) -> bool:
        return any(ip in net for net in self.networks if net.version == ip.version)

    async def check(self, url: str, where: str = "url") -> None:
        """Raise :class:`Forbidden` (blocked address) or :class:`InvalidRequest` (bad URL)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise InvalidRequest(f"{where}: not a valid URL") from None
        if parts.scheme not in ("http", "https"):
            raise InvalidRequest(f"{where}: only http and https URLs are allowed (got {parts.scheme!r})")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise InvalidRequest(f"{where}: the URL has no host")
        if host in self.hosts:
            return
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                answers = await self.resolver(host, port or (443 if parts.scheme == "https" else 80))
            except (OSError, UnicodeError):
                raise InvalidRequest(f"{where}: host {host!r} cannot be resolved") from None
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
            if not addresses:
                raise InvalidRequest(f"{where}: host {host!r} has no address")
        for ip in addresses:
            reason = forbidden_reason(ip)
            if reason is not None and not self._allowed(ip):
                raise Forbidden(f"{where}: {host!r} resolves to a {reason} address ({ip}); provider URLs "
                                "may not reach internal networks unless a platform admin allows it "
                                "(tenant setting network.allowPrivate)",
                                details={"field": where, "reason": reason})


def provider_urls(config: dict[str, Any], path: str = "") -> Iterator[tuple[str, str]]:
    """Every (path, url) in a plugin config whose key names a URL/endpoint/host."""
    for key, value in config.items():
        here = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict):
            yield from provider_urls(value, here)
        elif isinstance(value, str) and URL_KEY.search(str(key)) and "://" in value:
            yield here, value
