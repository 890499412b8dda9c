"""Settings from the environment and `.env`. Built once in `__main__`, never at import."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.providers.concurrency import CEILING, FLOOR

IdList = Annotated[frozenset[int], NoDecode]


def _parse_ids(value: object) -> frozenset[int]:
    if value is None:
        return frozenset()
    if isinstance(value, int):
        return frozenset({value})
    if isinstance(value, (list, tuple, set, frozenset)):
        return frozenset(int(v) for v in value)
    text = str(value).strip()
    if not text:
        return frozenset()
    ids: set[int] = set()
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if part:
            ids.add(int(part))  # ValueError becomes a validation error naming the setting
    return frozenset(ids)


#: What Telegram accepts as a webhook's secret_token.
WEBHOOK_SECRET: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_bot_token: SecretStr
    telegram_api_url: str = "https://api.telegram.org"
    telegram_rate_limiter: bool = True
    # progress in private chats as a live draft (sendMessageDraft); off: a status message
    live_drafts: bool = True

    image_api_dialect: Literal["openai-chat", "openai-images", "gemini"] = "openai-chat"
    image_api_base_url: str = ""
    image_api_key: SecretStr = SecretStr("")
    image_api_auth: Literal["bearer", "raw", "x-goog-api-key", "query-key"] = "bearer"
    image_model: str = "gemini-3.1-flash-image"
    image_api_timeout: float = Field(default=180.0, gt=0)
    image_api_extra_body: dict[str, Any] = Field(default_factory=dict)
    image_providers_file: Path | None = None
    # requests in flight to the endpoint adapt between these (AIMD); equal values fix them
    image_api_min_concurrency: int = Field(default=FLOOR, ge=1)
    image_api_max_concurrency: int = Field(default=CEILING, ge=1)
    image_price_per_image: float | None = Field(default=None, ge=0)
    image_prices: dict[str, float] = Field(default_factory=dict)
    daily_images_per_user: int = Field(default=0, ge=0)
    daily_images_per_chat: int = Field(default=0, ge=0)
    max_stored_mb_per_user_day: int = Field(default=500, ge=0)  # 0 = unlimited
    max_concurrent_jobs: int = Field(default=256, ge=1)
    max_jobs_per_user: int = Field(default=2, ge=1)
    image_retry_attempts: int = Field(default=3, ge=1, le=10)
    image_retry_base_delay: float = Field(default=1.0, ge=0)
    # hosts image links may lead to although they resolve to a private or local address
    image_url_allowed_hosts: str = ""

    # Paid mode: `stars` charges images in Telegram Stars credits; `off` changes nothing.
    paid_mode: Literal["off", "stars"] = "off"
    free_images_per_day: int = Field(default=0, ge=0)
    star_packs: Annotated[tuple[int, ...], NoDecode] = (50, 200, 1000)
    stars_per_usd: float = Field(default=100.0, gt=0)
    star_prices: dict[str, int] = Field(default_factory=dict)
    star_price_default: int = Field(default=10, ge=1)
    star_price_shown_above: int = Field(default=0, ge=0)

    data_dir: Path = Path("./data")
    database_url: str = ""
    # images in an S3-compatible bucket (s3://bucket/prefix) instead of DATA_DIR/images
    blob_store_url: str = ""
    s3_endpoint_url: str = ""  # empty: AWS's own endpoint for S3_REGION
    s3_access_key_id: SecretStr = SecretStr("")
    s3_secret_access_key: SecretStr = SecretStr("")
    s3_region: str = "us-east-1"

    allowed_user_ids: IdList = frozenset()
    allowed_chat_ids: IdList = frozenset()
    admin_user_ids: IdList = frozenset()

    max_input_side: int = Field(default=2048, ge=256, le=8192)
    max_caption_prompt: int = Field(default=4000, ge=1)
    history_window: int = Field(default=2, ge=1, le=10)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per line
    # host:port of /healthz, /readyz and /metrics in polling mode; empty: no server
    http_listen: str = ""
    # webhook mode: Telegram POSTs updates to this URL (empty: long polling, the default)
    telegram_webhook_url: str = ""
    # required with the URL: Telegram sends it in X-Telegram-Bot-Api-Secret-Token
    telegram_webhook_secret: SecretStr = SecretStr("")
    # host:port the webhook server (and /healthz, /readyz, /metrics) listens on
    webhook_listen: str = "0.0.0.0:8080"
    # seconds without a heartbeat after which a replica counts as dead and what it held
    # (jobs, chats) is taken over by another (several replicas on one PostgreSQL)
    replica_lease_seconds: float = Field(default=15.0, ge=1.0, le=600.0)
    bot_diagnostics_file: Path | None = None

    @field_validator("allowed_user_ids", "allowed_chat_ids", "admin_user_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> frozenset[int]:
        return _parse_ids(value)

    @field_validator("star_packs", mode="before")
    @classmethod
    def _packs(cls, value: object) -> tuple[int, ...]:
        if isinstance(value, (list, tuple)):
            packs = [int(v) for v in value]
        else:
            packs = [int(p) for p in str(value).replace(";", ",").split(",") if p.strip()]
        if not packs or any(not 1 <= p <= 100_000 for p in packs):
            raise ValueError("give one or more packs of 1 to 100000 Stars, e.g. 50,200,1000")
        return tuple(sorted(set(packs)))

    @field_validator("star_prices")
    @classmethod
    def _star_prices(cls, value: dict[str, int]) -> dict[str, int]:
        if any(v < 1 for v in value.values()):
            raise ValueError("every price must be at least 1 Star")
        return value

    @field_validator("telegram_api_url", "image_api_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("blob_store_url")
    @classmethod
    def _blob_store_url(cls, value: str) -> str:
        from bot.storage.s3blobs import S3Location

        value = value.strip()
        if value:
            S3Location.parse(value)  # the ValueError says what shape is expected
        return value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _s3_endpoint(cls, value: str) -> str:
        return cls._url(value)

    @field_validator("http_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        value = value.strip()
        if value:
            split_listen(value)  # the ValueError says what shape is expected
        return value

    @field_validator("webhook_listen")
    @classmethod
    def _webhook_listen(cls, value: str) -> str:
        split_listen(value)  # the ValueError says what shape is expected
        return value.strip()

    @field_validator("telegram_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// behind a proxy in tests)")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value().strip()
        if secret and not WEBHOOK_SECRET.fullmatch(secret):
            raise ValueError("must be 1 to 256 characters of A-Z a-z 0-9 _ -")
        return SecretStr(secret)

    @field_validator("image_url_allowed_hosts")
    @classmethod
    def _hosts(cls, value: str) -> str:
        from bot.providers.urlguard import parse_allowed_hosts

        parse_allowed_hosts(value)  # a ValueError names the entry that is no host
        return value.strip()

    @field_validator("telegram_bot_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        head, _, tail = token.partition(":")
        if not head.isdigit() or not tail:
            raise ValueError("does not look like a bot token from @BotFather (digits:letters)")
        return SecretStr(token)

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.image_api_base_url and self.image_providers_file is None:
            raise ValueError(
                "setting IMAGE_API_BASE_URL is required "
                "(or IMAGE_PROVIDERS_FILE for several endpoints)"
            )
        if self.image_api_min_concurrency > self.image_api_max_concurrency:
            raise ValueError(
                "setting IMAGE_API_MIN_CONCURRENCY must not exceed IMAGE_API_MAX_CONCURRENCY"
            )
        if self.telegram_webhook_url and not self.telegram_webhook_secret.get_secret_value():
            raise ValueError(
                "setting TELEGRAM_WEBHOOK_SECRET is required when TELEGRAM_WEBHOOK_URL is set "
                "(1 to 256 characters of A-Z a-z 0-9 _ -)"
            )
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir}/bot.db"
        return self

    @property
    def token(self) -> str:
        return self.telegram_bot_token.get_secret_value()

    @property
    def webhook_secret(self) -> str:
        return self.telegram_webhook_secret.get_secret_value()

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "images"


def split_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) as its host and port; ValueError otherwise."""
    host, sep, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must look like host:port, e.g. 0.0.0.0:8080")
    return host, int(port)


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it and never shows its value."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]).upper() or "settings"
        if err["type"] == "missing":
            lines.append(f"setting {name} is required but not set")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(msg if msg.startswith("setting ") else f"setting {name} is invalid: {msg}")
    return "; ".join(lines)
