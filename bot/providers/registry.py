"""Endpoints from settings: the single IMAGE_API_* endpoint, or a TOML providers file.

```toml
[[endpoint]]
name = "rainboxs"                 # shown in logs, /stats and `python -m bot check`
dialect = "openai-chat"           # openai-chat | openai-images | gemini
base_url = "https://api.rainboxs.com/v1"
api_key_env = "RAINBOXS_KEY"      # or api_key = "sk-..." (the file then holds a secret)
auth = "raw"                      # bearer (default) | raw | x-goog-api-key | query-key
models = ["gemini-2.5-flash-image", "gemini-2.5-flash-image-hd"]
price_per_image = 0.028          # or per model: prices = { "gemini-2.5-flash-image-hd" = 0.05 }
timeout = 180
max_concurrency = 128              # requests in flight adapt up to this ceiling (AIMD) ...
min_concurrency = 1                # ... and down to this floor; set both equal for a fixed cap
extra_body = { group = "default" } # merged into every request body
stream = true                     # gemini: read answers as SSE (default: on for Google only)
resend_after_200 = false           # true: a 200 without an image may be resent (never billed there)

[endpoint.profile]                # optional: where this relay differs from bot/providers/profiles
max_input_images = 2              # also aspect_ratios, image_sizes, supports_n, real_history
```
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.providers.base import Endpoint
from bot.providers.concurrency import CEILING, FLOOR
from bot.providers.profiles import RATIOS, SIZES, ProfileOverride


class ProvidersFileError(ValueError):
    """The providers file is missing, unreadable or wrong; the message says where."""


class _ProfileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_input_images: int | None = Field(default=None, ge=1, le=100)
    aspect_ratios: list[str] | None = None
    image_sizes: list[str] | None = None
    supports_n: bool | None = None
    real_history: bool | None = None

    @field_validator("aspect_ratios")
    @classmethod
    def _ratios(cls, value: list[str] | None) -> list[str] | None:
        return _known(value, RATIOS)

    @field_validator("image_sizes")
    @classmethod
    def _sizes(cls, value: list[str] | None) -> list[str] | None:
        return _known(value, SIZES)

    def to_override(self) -> ProfileOverride:
        return ProfileOverride(
            max_input_images=self.max_input_images,
            aspect_ratios=None if self.aspect_ratios is None else tuple(self.aspect_ratios),
            image_sizes=None if self.image_sizes is None else tuple(self.image_sizes),
            supports_n=self.supports_n,
            real_history=self.real_history,
        )


def _known(values: list[str] | None, allowed: tuple[str, ...]) -> list[str] | None:
    wrong = [v for v in values or () if v not in allowed]
    if wrong:
        raise ValueError(f"{', '.join(wrong)} not among {', '.join(allowed)}")
    return values


class _EndpointSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    dialect: Literal["openai-chat", "openai-images", "gemini"]
    base_url: str
    api_key: str | None = None
    api_key_env: str | None = None
    auth: Literal["bearer", "raw", "x-goog-api-key", "query-key"] = "bearer"
    models: list[str] = Field(default_factory=list)
    price_per_image: float | None = Field(default=None, ge=0)
    prices: dict[str, float] = Field(default_factory=dict)
    timeout: float = Field(default=180.0, gt=0)
    min_concurrency: int = Field(default=FLOOR, ge=1, le=1000)
    max_concurrency: int = Field(default=CEILING, ge=1, le=1000)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    stream: bool | None = None
    resend_after_200: bool = False
    profile: _ProfileSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> _EndpointSpec:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        if self.api_key is not None and self.api_key_env is not None:
            raise ValueError("give api_key or api_key_env, not both")
        if self.min_concurrency > self.max_concurrency:
            raise ValueError("min_concurrency must not exceed max_concurrency")
        return self

    def to_endpoint(self) -> Endpoint:
        key = self.api_key or ""
        if self.api_key_env:
            key = os.environ.get(self.api_key_env, "")
            if not key:
                raise ProvidersFileError(
                    f"endpoint {self.name}: environment variable {self.api_key_env} is not set"
                )
        return Endpoint(
            name=self.name,
            dialect=self.dialect,
            base_url=self.base_url.rstrip("/"),
            api_key=key,
            auth_style=self.auth,
            models=tuple(self.models),
            timeout=self.timeout,
            price_per_image=self.price_per_image,
            min_concurrency=self.min_concurrency,
            max_concurrency=self.max_concurrency,
            extra_body=dict(self.extra_body),
            prices=dict(self.prices),
            stream=self.stream,
            resend_after_200=self.resend_after_200,
            profile=None if self.profile is None else self.profile.to_override(),
        )


def load_providers_file(path: Path) -> list[Endpoint]:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ProvidersFileError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProvidersFileError(f"{path} is not valid TOML: {exc}") from None
    raw = data.get("endpoint")
    if not isinstance(raw, list) or not raw:
        raise ProvidersFileError(f"{path} has no [[endpoint]] tables")
    endpoints = []
    for i, item in enumerate(raw):
        try:
            endpoints.append(_EndpointSpec.model_validate(item).to_endpoint())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "endpoint"
            msg = str(first["msg"]).removeprefix("Value error, ")
            raise ProvidersFileError(f"{path}: endpoint #{i + 1} {where}: {msg}") from None
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise ProvidersFileError(f"{path}: endpoint names must be unique")
    return endpoints
