"""The callback URL rules and the addresses callbacks may not reach (shared/callback_targets.py)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from shared.callback_targets import CallbackTargetSettings, FilteringResolver, TargetPolicy, TargetRefused

STRICT = TargetPolicy()
LOCAL = TargetPolicy(allow_localhost=True)


class TestUrlRules:
    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("http://example.com/", "url must be an https:// URL (http:// is allowed only for localhost"),
            ("ftp://example.com/", "url must be an https:// URL"),
            ("https:///path", "url must name a host"),
            ("https://user@example.com/", "url must not contain credentials"),
            ("https://example.com/#x", "url must not have a fragment"),
            ("https://example.com/a b", "url must not contain spaces or control characters"),
            ("https://example.com:99999/", "url is not a valid URL"),
            ("https://[::1/", "url is not a valid URL"),
            ("https://" + "a" * 2050, "url is longer than 2048 characters"),
        ],
    )
    def test_refused(self, url: str, reason: str) -> None:
        with pytest.raises(TargetRefused, match="^" + reason.replace("(", r"\(").replace(")", r"\)")):
            STRICT.check_url(url)

    def test_http_only_for_the_two_localhost_names_and_only_when_allowed(self) -> None:
        assert LOCAL.check_url("http://localhost:8080/x").port == 8080
        assert LOCAL.check_url("http://127.0.0.1/x").port == 80
        for url in ("http://127.0.0.2/", "http://example.com/", "http://[::1]/"):
            with pytest.raises(TargetRefused):
                LOCAL.check_url(url)
        with pytest.raises(TargetRefused):
            STRICT.check_url("http://localhost/")

    def test_a_literal_is_recognised(self) -> None:
        target = STRICT.check_url("https://[2001:db8::1]:8443/x")
        assert target.literal == ipaddress.ip_address("2001:db8::1") and target.port == 8443


class TestAddresses:
    @pytest.mark.parametrize(
        ("address", "reason"),
        [
            ("127.0.0.1", "a loopback address"),
            ("::1", "a loopback address"),
            ("10.1.2.3", "a private address"),
            ("172.31.0.1", "a private address"),
            ("192.168.0.1", "a private address"),
            ("fd00::1", "a private address"),
            ("169.254.169.254", "a cloud metadata address"),
            ("fd00:ec2::254", "a cloud metadata address"),
            ("169.254.170.2", "a cloud metadata address"),
            ("100.100.100.200", "a cloud metadata address"),
            ("169.254.1.1", "a link-local address"),
            ("fe80::1", "a link-local address"),
            ("100.64.0.1", "a shared (carrier-grade NAT) address"),
            ("100.127.255.254", "a shared (carrier-grade NAT) address"),
            ("224.0.0.1", "a multicast address"),
            ("ff02::1", "a multicast address"),
            ("0.0.0.0", "the unspecified address"),
            ("::", "the unspecified address"),
            ("240.0.0.1", "a reserved address (not globally reachable)"),
            ("192.0.2.1", "a reserved address (not globally reachable)"),
            ("198.18.0.1", "a reserved address (not globally reachable)"),
            ("::ffff:10.0.0.1", "an IPv6 form of 10.0.0.1, a private address"),
            ("::ffff:169.254.169.254", "an IPv6 form of 169.254.169.254, a cloud metadata address"),
            ("64:ff9b::a9fe:a9fe", "an IPv6 form of 169.254.169.254, a cloud metadata address"),
            ("2002:7f00:1::", "an IPv6 form of 127.0.0.1, a loopback address"),
        ],
    )
    def test_refused(self, address: str, reason: str) -> None:
        assert STRICT.refusal(ipaddress.ip_address(address), host=address) == reason

    @pytest.mark.parametrize("address", ["8.8.8.8", "203.0.114.10", "2001:4860::8888", "::ffff:8.8.8.8", "100.128.0.1"])
    def test_public_addresses_are_allowed(self, address: str) -> None:
        assert STRICT.refusal(ipaddress.ip_address(address), host=address) is None

    def test_the_allow_list(self) -> None:
        policy = TargetPolicy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("fd12::/16")))
        assert policy.refusal(ipaddress.ip_address("10.20.9.9"), host="hooks.internal") is None
        assert policy.refusal(ipaddress.ip_address("::ffff:10.20.9.9"), host="hooks.internal") is None
        assert policy.refusal(ipaddress.ip_address("fd12::5"), host="hooks.internal") is None
        assert policy.refusal(ipaddress.ip_address("10.21.0.1"), host="hooks.internal") == "a private address"

    def test_the_localhost_exemption_is_for_its_names_only(self) -> None:
        loopback = ipaddress.ip_address("127.0.0.1")
        assert LOCAL.refusal(loopback, host="localhost") is None
        assert LOCAL.refusal(loopback, host="127.0.0.1") is None
        assert LOCAL.refusal(loopback, host="rebound.example.com") == "a loopback address"
        assert STRICT.refusal(loopback, host="localhost") == "a loopback address"

    def test_a_name_is_checked_on_every_address_it_resolves_to(self) -> None:
        with pytest.raises(TargetRefused, match="^url's host localhost resolves to 127.0.0.1, a loopback address"):
            asyncio.run(STRICT.check("https://localhost/hooks"))
        assert asyncio.run(LOCAL.check("https://localhost/hooks")).host == "localhost"


class FakeResolver(AbstractResolver):
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=address, port=port, family=socket.AF_INET6 if ":" in address else socket.AF_INET, proto=0, flags=0)
            for address in self.addresses
        ]

    async def close(self) -> None:
        return None


class TestFilteringResolver:
    def test_public_answers_pass(self) -> None:
        resolver = FilteringResolver(STRICT, FakeResolver(["8.8.8.8", "2001:4860::8888"]))
        assert [r["host"] for r in asyncio.run(resolver.resolve("hooks.example.com", 443))] == ["8.8.8.8", "2001:4860::8888"]

    def test_rebinding_to_a_private_address_is_refused(self) -> None:
        # Public when the URL was set; now one of its answers is the metadata service.
        resolver = FilteringResolver(STRICT, FakeResolver(["8.8.8.8", "169.254.169.254"]))
        with pytest.raises(TargetRefused, match="resolves to 169.254.169.254, a cloud metadata address"):
            asyncio.run(resolver.resolve("hooks.example.com", 443))


class TestSettings:
    def test_allowed_networks_comma_separated_or_json(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CALLBACKS_ALLOWED_NETWORKS", "10.0.0.0/8, fd00::/8")
        assert [str(n) for n in CallbackTargetSettings().callbacks_allowed_networks] == ["10.0.0.0/8", "fd00::/8"]
        monkeypatch.setenv("CALLBACKS_ALLOWED_NETWORKS", '["192.168.0.0/16"]')
        assert [str(n) for n in CallbackTargetSettings().callbacks_allowed_networks] == ["192.168.0.0/16"]
        monkeypatch.setenv("CALLBACKS_ALLOWED_NETWORKS", "not-a-network")
        with pytest.raises(ValueError):
            CallbackTargetSettings()
