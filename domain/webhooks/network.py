"""Where webhooks may go (R43): http(s) URLs whose host resolves only to public addresses, or to
networks the operator allows (``DESKFLEET_WEBHOOK_ALLOWED_NETWORKS``). Checked when an endpoint is
saved and again at each attempt, which then connects to the address checked (a name that
resolves elsewhere the second time, DNS rebinding, gains nothing)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from domain.kernel.errors import ErrorCode, ValidationFailed

URL_MAX = 2000
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL is not one webhooks may be sent to; the message says why."""


@dataclass(frozen=True)
class Target:
    url: str  # as given
    address: Address  # where to connect
    host: str  # for the Host header and TLS
    parts: SplitResult

    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address."""
        address = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        port = f":{self.parts.port}" if self.parts.port else ""
        return self.parts._replace(netloc=f"{address}{port}").geturl()

    def host_header(self) -> str:
        return self.parts.netloc


def networks(cidrs: list[str]) -> list[Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def _public(address: Address) -> bool:
    return address.is_global and not address.is_multicast


def allowed(address: Address, allowed_networks: list[Network]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return _public(address) or any(address in network for network in allowed_networks)


def parse(url: str) -> SplitResult:
    """The URL's parts, or TargetRefused saying what is wrong with it."""
    if len(url) > URL_MAX:
        raise TargetRefused(f"the URL is longer than {URL_MAX} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("the URL cannot be parsed") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("only http:// and https:// URLs can receive webhooks")
    if not parts.hostname:
        raise TargetRefused("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("the URL must not carry a user name or password")
    if port == 0:
        raise TargetRefused("the URL's port must be between 1 and 65535")
    if parts.fragment:
        raise TargetRefused("the URL must not have a #fragment")
    return parts


async def resolve(url: str, allowed_networks: list[Network]) -> Target:
    """Where ``url`` goes, if every address its host resolves to may receive webhooks."""
    parts = parse(url)
    host = parts.hostname or ""
    try:
        addresses: list[Address] = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host,
                parts.port or (443 if parts.scheme == "https" else 80),
                type=socket.SOCK_STREAM,
            )
        except (OSError, UnicodeError):
            raise TargetRefused(f"the host {host!r} cannot be resolved") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    if not addresses:
        raise TargetRefused(f"the host {host!r} cannot be resolved")
    for address in addresses:
        if not allowed(address, allowed_networks):
            raise TargetRefused(
                f"{host} is (or resolves to) a private, loopback, link-local or reserved "
                "address; webhooks go only to public addresses unless the operator allows the "
                "network (DESKFLEET_WEBHOOK_ALLOWED_NETWORKS)"
            )
    return Target(url=url, address=addresses[0], host=host, parts=parts)


async def checked_url(url: str, allowed_networks: list[Network], *, field: str = "url") -> str:
    """``url`` when webhooks may go there, else a typed validation error naming ``field``."""
    url = url.strip()
    try:
        await resolve(url, allowed_networks)
    except TargetRefused as refused:
        raise ValidationFailed(ErrorCode.INVALID_URL, f"{field}: {refused}", field=field) from None
    return url
