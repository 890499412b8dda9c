"""Build upstream providers from settings: one endpoint or a providers file, behind a pool."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import httpx

from bot import redaction
from bot.config import Settings
from bot.providers.base import Endpoint, ImageProvider
from bot.providers.gemini import GeminiProvider
from bot.providers.openai_chat import OpenAIChatProvider
from bot.providers.openai_images import OpenAIImagesProvider
from bot.providers.pool import EndpointFaultHook, ProviderPool, RetryPolicy
from bot.providers.registry import load_providers_file
from bot.providers.urlguard import UrlPolicy, parse_allowed_hosts


def endpoint_from_settings(settings: Settings) -> Endpoint:
    """The single endpoint described by the IMAGE_API_* settings."""
    return Endpoint(
        name="default",
        dialect=settings.image_api_dialect,
        base_url=settings.image_api_base_url,
        api_key=settings.image_api_key.get_secret_value(),
        auth_style=settings.image_api_auth,
        models=(),
        timeout=settings.image_api_timeout,
        min_concurrency=settings.image_api_min_concurrency,
        max_concurrency=settings.image_api_max_concurrency,
        extra_body=dict(settings.image_api_extra_body),
        price_per_image=settings.image_price_per_image,
        prices=dict(settings.image_prices),
    )


def endpoints_from_settings(settings: Settings) -> list[Endpoint]:
    """The providers file's endpoints when IMAGE_PROVIDERS_FILE is set, else the single one."""
    if settings.image_providers_file is not None:
        return load_providers_file(settings.image_providers_file)
    return [endpoint_from_settings(settings)]


def secrets_of(settings: Settings, endpoints: list[Endpoint]) -> list[str]:
    """Every secret the settings hold: the bot token, the database's password (PostgreSQL),
    the S3 keys, the webhook's secret, each endpoint's key and auth values."""
    found = [settings.token, settings.token.partition(":")[2]]
    found.append(database_url_password(settings.database_url))
    found += [
        settings.s3_access_key_id.get_secret_value(),
        settings.s3_secret_access_key.get_secret_value(),
        settings.webhook_secret,
    ]
    for endpoint in endpoints:
        found.append(endpoint.api_key)
        found += endpoint.auth_headers().values()
        found += endpoint.auth_params().values()
    return [s for s in found if s]


def database_url_password(url: str) -> str:
    """The password in a database URL (postgresql+asyncpg://user:password@host/db), if any."""
    try:
        return unquote(urlsplit(url).password or "")
    except ValueError:
        return ""  # not a URL: the engine says so when it starts


def register_secrets(settings: Settings, endpoints: list[Endpoint]) -> None:
    """Make `bot.redaction` mask every secret of these settings, wherever text leaves the bot."""
    redaction.register(secrets_of(settings, endpoints))


def url_policy(settings: Settings) -> UrlPolicy:
    """Where image links may lead: public addresses, plus IMAGE_URL_ALLOWED_HOSTS (each provider
    adds its own endpoint's origin)."""
    return UrlPolicy(allowed_hosts=parse_allowed_hosts(settings.image_url_allowed_hosts))


def provider_for(
    endpoint: Endpoint, http: httpx.AsyncClient, policy: UrlPolicy | None = None
) -> ImageProvider:
    if endpoint.dialect == "openai-chat":
        return OpenAIChatProvider(endpoint, http, url_policy=policy)
    if endpoint.dialect == "openai-images":
        return OpenAIImagesProvider(endpoint, http, url_policy=policy)
    if endpoint.dialect == "gemini":
        return GeminiProvider(endpoint, http, url_policy=policy)
    raise ValueError(f"unknown dialect {endpoint.dialect}")


def build_provider(
    settings: Settings,
    http: httpx.AsyncClient,
    *,
    on_endpoint_fault: EndpointFaultHook | None = None,
) -> ProviderPool:
    endpoints = endpoints_from_settings(settings)
    register_secrets(settings, endpoints)
    links = url_policy(settings)
    providers = [provider_for(e, http, links) for e in endpoints]
    policy = RetryPolicy(
        attempts_per_endpoint=settings.image_retry_attempts,
        base_delay=settings.image_retry_base_delay,
    )
    return ProviderPool(providers, policy, on_endpoint_fault=on_endpoint_fault)


def make_http_client(*, trust_env: bool = True) -> httpx.AsyncClient:
    """One shared client for every upstream call; per-request timeouts come from the endpoint.
    `trust_env`: proxies (and certificates) from the environment, as httpx reads them."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(180.0, connect=15.0),
        # No cap of its own: the scheduler and each endpoint's adaptive limit bound the calls.
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
        follow_redirects=True,
        trust_env=trust_env,
    )
