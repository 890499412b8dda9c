"""Build the upstream provider from settings."""

from __future__ import annotations

import httpx

from bot.config import Settings
from bot.providers.base import Endpoint, ImageProvider
from bot.providers.openai_chat import OpenAIChatProvider


def endpoint_from_settings(settings: Settings) -> Endpoint:
    """The single endpoint described by the IMAGE_API_* settings."""
    return Endpoint(
        name="default",
        dialect=settings.image_api_dialect,
        base_url=settings.image_api_base_url,
        api_key=settings.image_api_key.get_secret_value(),
        auth_style=settings.image_api_auth,
        models=(settings.image_model,),
        timeout=settings.image_api_timeout,
    )


def build_provider(settings: Settings, http: httpx.AsyncClient) -> ImageProvider:
    endpoint = endpoint_from_settings(settings)
    if endpoint.dialect == "openai-chat":
        return OpenAIChatProvider(endpoint, http)
    raise ValueError(f"dialect {endpoint.dialect} is not available yet")


def make_http_client() -> httpx.AsyncClient:
    """One shared client for every upstream call; per-request timeouts come from the endpoint."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(180.0, connect=15.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        follow_redirects=True,
        trust_env=True,
    )
