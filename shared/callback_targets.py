"""Where status callbacks may go: the URL rules and the addresses a callback may reach (no SSRF).

A callback URL is the client's, but the request is ours, made from inside our network: without
rules a client could make us call our own database, the cloud's metadata service or anything else
only we can reach. So, in one place for the gateway (when a URL is set) and the callback sender
(when it sends):

- **The URL**: ``https`` only, with a host, no credentials, no fragment, at most
  ``MAX_URL_LENGTH`` characters. ``http`` is allowed for ``localhost`` and ``127.0.0.1`` only,
  and only with ``CALLBACKS_ALLOW_LOCALHOST=true`` (the local stack sets it), which also lets those
  two hosts be reached over https.
- **The addresses**: every address the host is (an IP literal) or resolves to must be globally
  reachable: loopback (except the localhost exemption), private (RFC 1918, IPv6 unique-local),
  link-local, shared/CGNAT (100.64.0.0/10), multicast, unspecified, reserved and documentation
  ranges, and the cloud metadata addresses (169.254.169.254, fd00:ec2::254, ...) are refused,
  also when embedded in an IPv6 address (IPv4-mapped, NAT64, 6to4), unless
  ``CALLBACKS_ALLOWED_NETWORKS`` lists a network that holds them.

The gateway checks both when a URL is set (``PUT /callbacks`` answers 400 naming the reason). The
callback sender checks them again on every send, on the addresses it is about to connect to:
``FilteringResolver`` is the only resolver its HTTP client has, so the addresses checked are the
addresses connected to, and a host that resolved to a public address when it was set and to a
private one now (DNS rebinding) is refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import SplitResult, urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

MAX_URL_LENGTH = 2048
LOCALHOST_NAMES = frozenset({"localhost", "127.0.0.1"})
# How long setting a URL may wait for its host to resolve.
RESOLVE_TIMEOUT_SECONDS = 3.0

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata services: credentials and configuration of the machine we run on.
METADATA_ADDRESSES: frozenset[Address] = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "fd00:ec2::254",  # AWS over IPv6
        "169.254.170.2",  # ECS task metadata and credentials
        "169.254.170.23",  # EKS Pod Identity
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")

REFUSED_RANGES = (
    "callbacks may not reach loopback, private, link-local, shared (CGNAT), multicast, reserved or cloud metadata "
    "addresses unless CALLBACKS_ALLOWED_NETWORKS lists them"
)


class TargetRefused(ValueError):
    """A callback URL, or an address it resolves to, that callbacks may not use; the message says why."""


class CallbackTargetSettings(BaseSettings):
    """The rules above, read by the gateway and by the callback sender (the same variables)."""

    callbacks_allow_localhost: bool = Field(default=False, validation_alias="CALLBACKS_ALLOW_LOCALHOST")
    # Comma-separated or a JSON list of networks callbacks may reach although they are not public,
    # e.g. "10.20.0.0/16,fd12:3456::/48" for receivers inside your own network.
    callbacks_allowed_networks: Annotated[list[Network], NoDecode, Field(default_factory=list, validation_alias="CALLBACKS_ALLOWED_NETWORKS")]

    @field_validator("callbacks_allowed_networks", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @property
    def callback_target_policy(self) -> TargetPolicy:
        return TargetPolicy(allow_localhost=self.callbacks_allow_localhost, allowed_networks=tuple(self.callbacks_allowed_networks))


@dataclass(frozen=True)
class Target:
    """A callback URL that passed the URL rules."""

    url: str
    host: str  # lower-case, brackets removed from an IPv6 literal
    port: int
    literal: Address | None  # the host, when it is an IP address


@dataclass(frozen=True)
class TargetPolicy:
    allow_localhost: bool = False
    allowed_networks: tuple[Network, ...] = ()

    def check_url(self, url: str) -> Target:
        """The URL rules; raises ``TargetRefused`` saying which one the URL breaks."""
        if len(url) > MAX_URL_LENGTH:
            raise TargetRefused(f"url is longer than {MAX_URL_LENGTH} characters")
        if any(character.isspace() or ord(character) < 0x20 or 0x7F <= ord(character) <= 0x9F for character in url):
            raise TargetRefused("url must not contain spaces or control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise TargetRefused(f"url is not a valid URL ({exc})") from None
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        if scheme not in ("https", "http"):
            raise TargetRefused("url must be an https:// URL")
        if not host:
            raise TargetRefused("url must name a host")
        localhost = host in LOCALHOST_NAMES
        if scheme == "http" and not (localhost and self.allow_localhost):
            raise TargetRefused(
                "url must be an https:// URL (http:// is allowed only for localhost and 127.0.0.1, "
                "when CALLBACKS_ALLOW_LOCALHOST is true)"
            )
        if parts.username is not None or parts.password is not None:
            raise TargetRefused("url must not contain credentials: the signature authenticates our callbacks")
        if parts.fragment or url.endswith("#"):
            raise TargetRefused("url must not have a fragment")
        literal = _literal(parts)
        if literal is None:
            try:
                host.encode("idna")
            except UnicodeError:
                raise TargetRefused(f"url's host {host!r} is not a valid host name") from None
        return Target(url=url, host=host, port=port or (443 if scheme == "https" else 80), literal=literal)

    def refusal(self, address: Address, *, host: str) -> str | None:
        """Why ``address`` (of ``host``) may not be reached, or None when it may."""
        if any(address in network for network in self.allowed_networks if network.version == address.version):
            return None
        if address.is_loopback and self.allow_localhost and host in LOCALHOST_NAMES:
            return None
        reason = _forbidden(address)
        if reason is not None and isinstance(address, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(address)) is not None:
            # An IPv6 form of an IPv4 address is judged as that address (allow-list included).
            if self.refusal(embedded, host=host) is None:
                return None
        return reason

    def check_address(self, address: Address, *, host: str) -> None:
        """Raise ``TargetRefused`` when ``address`` (``host`` or one it resolves to) may not be reached."""
        reason = self.refusal(address, host=host)
        if reason is None:
            return
        if _as_address(host) is not None:
            raise TargetRefused(f"url's host {host} is {reason}: {REFUSED_RANGES}")
        raise TargetRefused(f"url's host {host} resolves to {address}, {reason}: {REFUSED_RANGES}")

    async def check(self, url: str, *, resolve_timeout: float = RESOLVE_TIMEOUT_SECONDS) -> Target:
        """The URL rules, then every address its host is or resolves to (when a URL is set)."""
        target = self.check_url(url)
        if target.literal is not None:
            self.check_address(target.literal, host=target.host)
            return target
        try:
            async with asyncio.timeout(resolve_timeout):
                infos = await asyncio.get_running_loop().getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (TimeoutError, OSError):
            raise TargetRefused(f"url's host {target.host} could not be resolved") from None
        for address in {ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}:
            self.check_address(address, host=target.host)
        return target


class FilteringResolver(AbstractResolver):
    """The callback sender's resolver: the system's (getaddrinfo), and every address checked
    against the policy; a host with any refused address is not connected to at all."""

    def __init__(self, policy: TargetPolicy, base: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._base = base or ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._base.resolve(host, port, family)
        name = host.lower().rstrip(".")
        for result in results:
            self._policy.check_address(ipaddress.ip_address(result["host"].split("%", 1)[0]), host=name)
        return results

    async def close(self) -> None:
        await self._base.close()


def _forbidden(address: Address) -> str | None:
    """Which kind of address that is not globally reachable ``address`` is, or None."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT:
        return "a shared (carrier-grade NAT) address"
    if isinstance(address, ipaddress.IPv6Address) and _embedded_ipv4(address) is not None:
        embedded = _embedded_ipv4(address)
        assert embedded is not None
        inner = _forbidden(embedded)
        return f"an IPv6 form of {embedded}, {inner}" if inner else None
    if address.is_private and (
        (isinstance(address, ipaddress.IPv4Address) and any(address in ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")))
        or (isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network("fc00::/7"))
    ):
        return "a private address"
    if not address.is_global:
        return "a reserved address (not globally reachable)"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: IPv4-mapped, NAT64 (64:ff9b::/96), 6to4."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _literal(parts: SplitResult) -> Address | None:
    return _as_address((parts.hostname or "").lower())


def _as_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
