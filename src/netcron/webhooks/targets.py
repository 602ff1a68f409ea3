"""Where a webhook may send: http(s) URLs, and, when the admin says so, some networks only.

Receivers on private addresses are the usual case (a chat bridge or an incident tool
inside the network), so by default any address is allowed.
``NETCRON_WEBHOOK_ALLOWED_NETWORKS`` restricts them: a literal address is checked when
the webhook is saved, and every address a host name resolves to is checked again before
each delivery (a name can resolve elsewhere later).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048


class TargetRefused(ValueError):
    """The URL is not one netcron may deliver to."""


def parse_networks(networks: list[str]) -> list[IpNetwork]:
    return [ipaddress.ip_network(network, strict=False) for network in networks]


def check_url(url: str, networks: list[IpNetwork]) -> str:
    """The URL if it is http(s) with a host and no credentials, and its literal address allowed."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("only http and https URLs are allowed")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("put no credentials in the URL; receivers check the signature")
    if port == 0:
        raise TargetRefused("port 0 is not a port")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url
    if not allowed(address, networks):
        raise TargetRefused(f"{address} is outside NETCRON_WEBHOOK_ALLOWED_NETWORKS")
    return url


def allowed(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: list[IpNetwork]
) -> bool:
    return not networks or any(address in network for network in networks)


async def check_resolved(url: str, networks: list[IpNetwork]) -> None:
    """Before a delivery: every address the host resolves to must be allowed."""
    if not networks:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused(f"cannot resolve {host}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not allowed(address, networks):
            raise TargetRefused(f"{host} resolves to {address}, outside the allowed networks")
