"""Which image links the bot may fetch, and where it connects to fetch them (no SSRF).

An upstream answer names image URLs, and a user's prompt can make an echoing model name any
URL: fetched blindly, that would reach the operator's own network (the cloud metadata service
at 169.254.169.254, an admin page on localhost). So a link is fetched only over http(s), and
only if every address its host resolves to is a public one, unless it is the answering
endpoint's own origin (scheme, host, port) or a host the operator listed in
`IMAGE_URL_ALLOWED_HOSTS`. The connection then goes to the address that was checked (the URL's
host replaced by it, the name kept in the Host header and in TLS's SNI, so certificates are
still verified against the name): a second lookup could answer differently (DNS rebinding).
Redirects are followed by the caller, each hop checked here again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.extract import bad_response

log = logging.getLogger(__name__)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
Origin = tuple[str, str, int]  # (scheme, host, port)

SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# The most specific name first: a loopback address is also "not global".
_CHECKS = (
    ("loopback", "is_loopback"),
    ("unspecified", "is_unspecified"),
    ("link-local", "is_link_local"),
    ("multicast", "is_multicast"),
    ("private", "is_private"),
    ("reserved", "is_reserved"),
)


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, 6to4, Teredo, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IPAddress) -> str | None:
    """Why the bot must not connect to `ip` on an answer's say-so (None: a public address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None and (why := refusal(inner)) is not None:
            return f"{why} (IPv4 inside IPv6)"
        if ip.ipv4_mapped is not None:  # the socket connects to the IPv4 address itself
            return None
        if ip.is_site_local:
            return "site-local"
    for name, attribute in _CHECKS:
        if getattr(ip, attribute):
            return name
    if not ip.is_global:  # shared (100.64/10), benchmarking, documentation ranges...
        return "not global"
    return None


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system's resolver gives for `host` (in its order)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    return found


def _port(url: httpx.URL) -> int:
    return url.port or _DEFAULT_PORTS.get(url.scheme, 0)


def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) of a URL, host lower-case; None for a URL without a host."""
    parsed = httpx.URL(url)
    if not parsed.host:
        return None
    return parsed.scheme, parsed.host, _port(parsed)


def parse_allowed_hosts(text: str | Iterable[str]) -> frozenset[tuple[str, int | None]]:
    """`IMAGE_URL_ALLOWED_HOSTS`: comma-separated `host`, `host:port` or `[v6]:port` entries
    as (host, port or None for any port). Raises ValueError on an entry that is no host."""
    items = text.split(",") if isinstance(text, str) else list(text)
    allowed = set()
    for item in (i.strip() for i in items):
        if not item:
            continue
        parts = urlsplit(item if "://" in item else f"//{item}")
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            host = None
        if not host or parts.path not in ("", "/"):
            raise ValueError(f"{item!r} is not a host or host:port")
        allowed.add((host.lower(), port))
    return frozenset(allowed)


@dataclass(frozen=True)
class Pinned:
    """One way to send a checked request: the URL to connect to, with its Host header and
    TLS server name when the host was replaced by its checked address."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UrlPolicy:
    """Where image links may lead: public addresses, the endpoint's origin, allowed hosts."""

    allowed_hosts: frozenset[tuple[str, int | None]] = frozenset()
    origins: frozenset[Origin] = frozenset()
    resolver: Resolver = system_resolver

    def with_origin(self, base_url: str) -> UrlPolicy:
        """This policy, also trusting the origin of the endpoint at `base_url`."""
        origin = origin_of(base_url)
        return replace(self, origins=self.origins | {origin}) if origin else self

    def trusts(self, url: httpx.URL) -> bool:
        """The operator vouched for this URL's host: the endpoint's origin, or listed."""
        if (url.scheme, url.host, _port(url)) in self.origins:
            return True
        listed = self.allowed_hosts
        return (url.host, None) in listed or (url.host, _port(url)) in listed

    async def pin(self, url: httpx.URL) -> list[Pinned]:
        """How to fetch `url`, one Pinned per checked address (try them in order); a link the
        bot must not follow is a BAD_RESPONSE ProviderError."""
        if url.scheme not in SCHEMES:
            raise bad_response(f"image link has scheme {url.scheme!r}, not http(s)")
        if not url.host:
            raise bad_response("image link has no host")
        if self.trusts(url):
            return [Pinned(url)]
        addresses = await self._resolve(url)
        for ip in addresses:
            why = refusal(ip)
            if why is not None:
                log.warning(
                    "refused an image link to %s: %s is %s (list the host in "
                    "IMAGE_URL_ALLOWED_HOSTS if it is yours)",
                    url.host,
                    ip,
                    why,
                )
                raise bad_response(f"image link to {url.host} refused: {ip} is {why}")
        if url.scheme == "https" and not _is_ip(url.host) and _tunnelled(url):
            # through an HTTPS proxy's tunnel httpx verifies the certificate against the host
            # it connects to: pinned to an address, no public certificate would pass. The
            # proxy resolves the name itself, so only this check guards the link there.
            return [Pinned(url)]
        name = url.netloc.decode("ascii")
        tls_name = url.scheme == "https" and not _is_ip(url.host)
        extensions = {"sni_hostname": url.host} if tls_name else {}
        return [Pinned(url.copy_with(host=str(ip)), {"Host": name}, extensions) for ip in addresses]

    async def _resolve(self, url: httpx.URL) -> list[IPAddress]:
        if _is_ip(url.host):
            return [ipaddress.ip_address(url.host)]
        try:
            addresses = await self.resolver(url.host, _port(url))
        except (OSError, UnicodeError) as exc:
            raise ProviderError(  # as when httpx resolves: maybe a passing DNS failure
                ProviderErrorKind.CONNECTION, f"image link host {url.host} does not resolve: {exc}"
            ) from None
        if not addresses:
            raise bad_response(f"image link host {url.host} has no address")
        return addresses


def _tunnelled(url: httpx.URL) -> bool:
    """Whether the environment sends this https URL through a proxy (as httpx's trust_env)."""
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get("https") or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(url.host)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
