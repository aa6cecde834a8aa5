"""SSRF guard: internal addresses refused (literal or resolved), admin allowances honoured."""

from __future__ import annotations

import ipaddress

import pytest
from tests.tenancy.harness import FakeDns

from mosaic.errors import Forbidden, InvalidRequest
from mosaic.security.ssrf import UrlGuard, forbidden_reason, provider_urls

BLOCKED = {
    "http://127.0.0.1:8080/api": "loopback",
    "http://[::1]/": "loopback",
    "http://169.254.169.254/latest/meta-data/": "link-local",
    "http://10.1.2.3/": "private",
    "https://192.168.0.10/": "private",
    "http://172.16.5.4/": "private",
    "http://100.64.1.1/": "carrier-grade NAT",
    "http://0.0.0.0/": "unspecified",
    "http://[::ffff:127.0.0.1]/": "loopback",
    "http://[fd00::1]/": "private",
    "http://224.0.0.1/": "multicast",
}


@pytest.mark.parametrize("url", sorted(BLOCKED))
async def test_internal_literal_addresses_are_refused(url: str) -> None:
    with pytest.raises(Forbidden) as exc:
        await UrlGuard(resolver=FakeDns()).check(url, "baseUrl")
    assert exc.value.details["reason"] == BLOCKED[url]


async def test_names_resolving_inward_are_refused_and_public_ones_pass() -> None:
    dns = FakeDns({"metadata.example": ["169.254.169.254"], "mixed.example": ["93.184.216.34", "10.0.0.1"],
                   "git.example": ["93.184.216.34", "2606:2800:220:1::1"]})
    guard = UrlGuard(resolver=dns)
    await guard.check("https://git.example/api/v1")
    with pytest.raises(Forbidden, match="link-local"):
        await guard.check("https://metadata.example/")
    with pytest.raises(Forbidden, match="private"):
        await guard.check("https://mixed.example/")


async def test_admin_allowances_by_network_and_by_host() -> None:
    dns = FakeDns({"gitea.internal": ["10.20.0.5"], "other.internal": ["10.30.0.5"]})
    guard = UrlGuard(["10.20.0.0/16", "ci.lan"], resolver=dns)
    await guard.check("http://gitea.internal:3000/")
    await guard.check("http://ci.lan/")
    with pytest.raises(Forbidden):
        await guard.check("http://other.internal/")
    with pytest.raises(Forbidden):
        await guard.check("http://127.0.0.1/")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1/", "ftp://example.com/",
                                 "http://", "http://[zz::1/", "https://nohost.invalid/"])
async def test_bad_urls_are_invalid_requests(url: str) -> None:
    with pytest.raises(InvalidRequest):
        await UrlGuard(resolver=FakeDns()).check(url)


def test_reasons_and_url_discovery() -> None:
    assert forbidden_reason(ipaddress.ip_address("8.8.8.8")) is None
    assert forbidden_reason(ipaddress.ip_address("fe80::1")) == "link-local"
    config = {"baseUrl": "https://a", "auth": {"tokenUrl": "https://b"}, "name": "http://not-a-url-key",
              "webhook": {"endpoint": "http://c"}, "timeoutMs": 5}
    assert sorted(provider_urls(config)) == [("auth.tokenUrl", "https://b"), ("baseUrl", "https://a"),
                                             ("webhook.endpoint", "http://c")]
