"""bot.providers.urlguard: the address classifier, allowed hosts, pinning to checked addresses,
and redirects followed hop by hop (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from bot.config import SettingsError, load_settings
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.factory import make_http_client
from bot.providers.http import MAX_REDIRECTS, download_image
from bot.providers.urlguard import (
    IPAddress,
    Resolver,
    UrlPolicy,
    parse_allowed_hosts,
    refusal,
)
from tests.fakes.image_host import ImageHost

REFUSED = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "::1": "loopback",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "169.254.169.254": "link-local",
    "fe80::1": "link-local",
    "224.0.0.251": "multicast",
    "ff02::1": "multicast",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "fd00::1": "private",
    "240.0.0.1": "private",  # 240/4, reserved, is in Python's private list
    "100.100.100.200": "not global",  # shared address space: Alibaba Cloud's metadata service
    "198.18.0.1": "private",
    "fec0::1": "site-local",
    "::ffff:127.0.0.1": "loopback (IPv4 inside IPv6)",
    "::ffff:169.254.169.254": "link-local (IPv4 inside IPv6)",
    "::ffff:10.0.0.1": "private (IPv4 inside IPv6)",
    "64:ff9b::a9fe:a9fe": "link-local (IPv4 inside IPv6)",  # NAT64 of 169.254.169.254
    "2002:7f00:1::": "loopback (IPv4 inside IPv6)",  # 6to4 of 127.0.0.1
    "::7f00:1": "reserved",  # IPv4-compatible ::127.0.0.1
}
PUBLIC = ("8.8.8.8", "1.1.1.1", "142.250.74.110", "2606:4700::1111", "::ffff:8.8.8.8")


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_local_and_special_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == REFUSED[address]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_allowed_hosts_setting() -> None:
    assert parse_allowed_hosts(" nas.lan, 10.0.0.5:8080,[fd00::2]:443 ,,CDN.Example ") == {
        ("nas.lan", None),
        ("10.0.0.5", 8080),
        ("fd00::2", 443),
        ("cdn.example", None),
    }
    for bad in ("http://x/path", "a b:c", ":80"):
        with pytest.raises(ValueError):
            parse_allowed_hosts(bad)


def resolver_of(table: dict[str, list[str]], calls: list[str]) -> Resolver:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        return [ipaddress.ip_address(a) for a in table[host]]

    return resolve


async def test_a_public_name_is_pinned_to_its_checked_address() -> None:
    calls: list[str] = []
    policy = UrlPolicy(
        resolver=resolver_of({"cdn.example": ["93.184.216.34", "2606:2800::1"]}, calls)
    )
    pins = await policy.pin(httpx.URL("https://cdn.example:8443/a/b.png?sig=1"))
    assert [str(p.url) for p in pins] == [
        "https://93.184.216.34:8443/a/b.png?sig=1",
        "https://[2606:2800::1]:8443/a/b.png?sig=1",
    ]
    assert all(p.headers == {"Host": "cdn.example:8443"} for p in pins)
    assert all(p.extensions == {"sni_hostname": "cdn.example"} for p in pins)  # TLS checks it
    assert calls == ["cdn.example"]  # one lookup: nothing to rebind between check and connect


async def test_a_name_with_one_private_address_is_refused() -> None:
    policy = UrlPolicy(resolver=resolver_of({"mixed.example": ["93.184.216.34", "10.0.0.7"]}, []))
    with pytest.raises(ProviderError) as info:
        await policy.pin(httpx.URL("http://mixed.example/x.png"))
    assert info.value.kind is ProviderErrorKind.BAD_RESPONSE
    assert "10.0.0.7 is private" in info.value.detail


async def test_origin_and_allowed_hosts_are_trusted_without_a_lookup() -> None:
    calls: list[str] = []
    policy = UrlPolicy(
        allowed_hosts=parse_allowed_hosts("nas.lan,10.0.0.5:8080"),
        resolver=resolver_of({}, calls),
    ).with_origin("http://127.0.0.1:9000/v1")
    for url in ("http://127.0.0.1:9000/files/x.png", "https://nas.lan/x", "http://10.0.0.5:8080/"):
        assert [str(p.url) for p in await policy.pin(httpx.URL(url))] == [url]
    for url in ("https://127.0.0.1:9000/x", "http://127.0.0.1:9001/x", "http://10.0.0.5/x"):
        with pytest.raises(ProviderError):
            await policy.pin(httpx.URL(url))
    assert calls == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://8.8.8.8/x.png", "gopher://x/"])
async def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(ProviderError) as info:
        await UrlPolicy().pin(httpx.URL(url))
    assert "not http(s)" in info.value.detail


# --- redirects, over real HTTP ----------------------------------------------------------------


@pytest.fixture
async def host() -> AsyncIterator[ImageHost]:
    server = ImageHost()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def origin(host: ImageHost) -> AsyncIterator[str]:
    """An endpoint's origin whose /hop/<n> redirects n times (relative Location), then /to
    redirects to ?url=, and /img.png is an image."""

    async def hop(request: web.Request) -> web.Response:
        left = int(request.match_info["n"])
        if left == 0:
            raise web.HTTPFound("../img.png")
        raise web.HTTPFound(f"{left - 1}")

    async def to(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["url"])

    async def img(request: web.Request) -> web.Response:
        return web.Response(body=host.png, content_type="image/png")

    app = web.Application()
    app.router.add_get("/hop/{n}", hop)
    app.router.add_get("/to", to)
    app.router.add_get("/img.png", img)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # follow_redirects=True as the app's client has: the download must not rely on it being off
    async with make_http_client(trust_env=False) as client:
        yield client


async def fetch(http: httpx.AsyncClient, url: str, policy: UrlPolicy) -> bytes:
    image = await download_image(http, url, max_bytes=1_000_000, timeout=5, policy=policy)
    return image.data


async def test_redirects_within_the_origin_are_followed(
    http: httpx.AsyncClient, origin: str, host: ImageHost
) -> None:
    policy = UrlPolicy().with_origin(origin)
    assert await fetch(http, f"{origin}/hop/{MAX_REDIRECTS - 1}", policy) == host.png


async def test_redirects_are_bounded(http: httpx.AsyncClient, origin: str) -> None:
    with pytest.raises(ProviderError) as info:
        await fetch(http, f"{origin}/hop/{MAX_REDIRECTS}", UrlPolicy().with_origin(origin))
    assert info.value.kind is ProviderErrorKind.BAD_RESPONSE
    assert f"redirected more than {MAX_REDIRECTS} times" in info.value.detail


@pytest.mark.parametrize(
    "target",
    [
        "{host}/img.png",
        "http://localhost:{port}/img.png",
        "file:///etc/passwd",
        "http://[::ffff:127.0.0.1]:{port}/img.png",
    ],
)
async def test_each_hop_is_checked(
    http: httpx.AsyncClient, origin: str, host: ImageHost, target: str
) -> None:
    where = target.format(host=host.root, port=host.port)
    with pytest.raises(ProviderError) as info:
        await fetch(http, f"{origin}/to?url={where}", UrlPolicy().with_origin(origin))
    assert info.value.kind is ProviderErrorKind.BAD_RESPONSE
    assert host.hits == []


async def test_a_hop_to_an_allowed_host_is_followed(
    http: httpx.AsyncClient, origin: str, host: ImageHost
) -> None:
    policy = UrlPolicy(allowed_hosts=parse_allowed_hosts(f"127.0.0.1:{host.port}"))
    data = await fetch(http, f"{origin}/to?url={host.root}/x.png", policy.with_origin(origin))
    assert data == host.png and [h.target for h in host.hits] == ["/x.png"]


async def test_through_an_https_proxy_the_name_is_kept_but_still_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tunnel verifies TLS against the host it was asked for: pinning would fail every
    certificate, so the link goes by name; its addresses are still checked."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    table = {"cdn.example": ["93.184.216.34"], "evil.example": ["127.0.0.1"]}
    policy = UrlPolicy(resolver=resolver_of(table, []))
    [pin] = await policy.pin(httpx.URL("https://cdn.example/x.png"))
    assert str(pin.url) == "https://cdn.example/x.png" and pin.extensions == {}
    with pytest.raises(ProviderError):
        await policy.pin(httpx.URL("https://evil.example/x.png"))


def test_a_malformed_allowed_hosts_setting_is_named() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(
            _env_file=None,
            telegram_bot_token="1:a",
            image_api_base_url="https://x/v1",
            image_url_allowed_hosts="nas.lan,http://x/path",
        )
    assert "IMAGE_URL_ALLOWED_HOSTS" in str(info.value) and "http://x/path" in str(info.value)
