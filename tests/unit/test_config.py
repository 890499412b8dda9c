"""Settings: names, defaults, and one clear line for a bad value, never showing secrets."""

from __future__ import annotations

import pytest

from bot.config import SettingsError, load_settings, split_listen
from bot.providers.factory import endpoints_from_settings, secrets_of

TOKEN = "123456:AAAA-secret-token-value"


def test_defaults_and_derived_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("IMAGE_API_BASE_URL", "https://relay.example/v1/")
    monkeypatch.setenv("DATA_DIR", "/srv/bot")
    s = load_settings(_env_file=None)
    assert s.telegram_api_url == "https://api.telegram.org"
    assert s.image_api_dialect == "openai-chat"
    assert s.image_model == "gemini-3.1-flash-image"
    assert s.image_api_base_url == "https://relay.example/v1"
    assert s.database_url == "sqlite+aiosqlite:////srv/bot/bot.db"
    assert s.allowed_user_ids == frozenset()
    assert TOKEN not in repr(s)
    # upstream requests adapt between floor and ceiling; the job cap is only a safety net
    assert (s.image_api_min_concurrency, s.image_api_max_concurrency) == (1, 128)
    assert (s.max_concurrent_jobs, s.max_jobs_per_user) == (256, 2)


def test_a_concurrency_floor_above_the_ceiling_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("IMAGE_API_BASE_URL", "https://relay.example/v1")
    monkeypatch.setenv("IMAGE_API_MIN_CONCURRENCY", "8")
    monkeypatch.setenv("IMAGE_API_MAX_CONCURRENCY", "4")
    with pytest.raises(SettingsError, match="IMAGE_API_MIN_CONCURRENCY must not exceed"):
        load_settings(_env_file=None)


def test_id_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("IMAGE_API_BASE_URL", "https://relay.example/v1")
    monkeypatch.setenv("ALLOWED_USER_IDS", "1, 2,3")
    monkeypatch.setenv("ALLOWED_CHAT_IDS", "-100123")
    monkeypatch.setenv("ADMIN_USER_IDS", "")
    s = load_settings(_env_file=None)
    assert s.allowed_user_ids == {1, 2, 3}
    assert s.allowed_chat_ids == {-100123}
    assert s.admin_user_ids == frozenset()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "TELEGRAM_BOT_TOKEN is required"),
        ({"TELEGRAM_BOT_TOKEN": "nonsense"}, "TELEGRAM_BOT_TOKEN is invalid"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN}, "IMAGE_API_BASE_URL is required"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "IMAGE_API_BASE_URL": "ftp://x"}, "IMAGE_API_BASE_URL"),
        (
            {
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "IMAGE_API_BASE_URL": "https://x/v1",
                "IMAGE_API_DIALECT": "dall-e",
            },
            "IMAGE_API_DIALECT is invalid",
        ),
        (
            {
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "IMAGE_API_BASE_URL": "https://x/v1",
                "ALLOWED_USER_IDS": "12,abc",
            },
            "ALLOWED_USER_IDS is invalid",
        ),
    ],
)
def test_bad_settings_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
    assert TOKEN.split(":")[1] not in str(info.value)


def test_env_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text(
        f"TELEGRAM_BOT_TOKEN={TOKEN}\nIMAGE_API_BASE_URL=https://x/v1\nIMAGE_MODEL=m-1\n"
    )
    monkeypatch.chdir(tmp_path)
    assert load_settings().image_model == "m-1"


def test_start_up_objects_are_frozen_out_of_full_gc_passes() -> None:
    import gc

    from bot.__main__ import freeze_startup_objects

    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 10_000  # modules, PTB, SQLAlchemy, Pillow
    finally:
        gc.unfreeze()


def test_the_single_endpoint_limit_comes_from_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.providers.factory import endpoint_from_settings
    from bot.providers.pool import limit_of

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("IMAGE_API_BASE_URL", "https://relay.example/v1")
    monkeypatch.setenv("IMAGE_API_MAX_CONCURRENCY", "4")
    monkeypatch.setenv("IMAGE_API_MIN_CONCURRENCY", "4")  # a fixed cap, as before
    limit = limit_of(endpoint_from_settings(load_settings(_env_file=None)))
    assert limit.fixed and limit.limit == 4


def test_paid_mode_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("IMAGE_API_BASE_URL", "https://relay.example/v1")
    s = load_settings(_env_file=None)
    assert (s.paid_mode, s.free_images_per_day, s.star_packs) == ("off", 0, (50, 200, 1000))
    monkeypatch.setenv("PAID_MODE", "stars")
    monkeypatch.setenv("STAR_PACKS", "1000, 50,200")
    monkeypatch.setenv("STAR_PRICES", '{"gemini-3-pro-image@4K": 30}')
    s = load_settings(_env_file=None)
    assert s.star_packs == (50, 200, 1000) and s.star_prices == {"gemini-3-pro-image@4K": 30}
    for name, value in (("STAR_PACKS", "50,0"), ("STAR_PACKS", "many"), ("PAID_MODE", "usd")):
        monkeypatch.setenv(name, value)
        with pytest.raises(SettingsError, match=name):
            load_settings(_env_file=None)
        monkeypatch.delenv(name)


def test_ops_and_blob_store_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("IMAGE_API_BASE_URL", "https://relay.example/v1")
    s = load_settings(_env_file=None)
    assert (s.http_listen, s.log_format, s.blob_store_url) == ("", "text", "")
    assert s.s3_region == "us-east-1"
    monkeypatch.setenv("HTTP_LISTEN", "0.0.0.0:9100")
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("BLOB_STORE_URL", "s3://bucket/images")
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://minio:9000/")
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", "minio-secret-key-value")
    s = load_settings(_env_file=None)
    assert split_listen(s.http_listen) == ("0.0.0.0", 9100)
    assert (s.log_format, s.blob_store_url, s.s3_endpoint_url) == (
        "json",
        "s3://bucket/images",
        "http://minio:9000",
    )
    assert "minio-secret-key-value" not in repr(s)
    assert "minio-secret-key-value" in secrets_of(s, endpoints_from_settings(s))


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("HTTP_LISTEN", "9100", "HTTP_LISTEN is invalid: must look like host:port"),
        ("HTTP_LISTEN", "host:99999", "HTTP_LISTEN is invalid: must look like host:port"),
        ("BLOB_STORE_URL", "bucket/images", "BLOB_STORE_URL is invalid: must look like s3://"),
        ("S3_ENDPOINT_URL", "minio:9000", "S3_ENDPOINT_URL is invalid: must start with http"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT is invalid"),
    ],
)
def test_bad_ops_and_blob_store_settings(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("IMAGE_API_BASE_URL", "https://relay.example/v1")
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=says):
        load_settings(_env_file=None)


def test_webhook_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("IMAGE_API_BASE_URL", "https://relay.example/v1")
    s = load_settings(_env_file=None)
    assert (s.telegram_webhook_url, s.webhook_secret) == ("", "")  # long polling
    assert split_listen(s.webhook_listen) == ("0.0.0.0", 8080)
    secret = "Ab_-9" + "x" * 251  # 256 characters, every kind allowed
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://bot.example.org/tg/hook")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", secret)
    monkeypatch.setenv("WEBHOOK_LISTEN", "127.0.0.1:8443")
    s = load_settings(_env_file=None)
    assert s.telegram_webhook_url == "https://bot.example.org/tg/hook"
    assert s.webhook_secret == secret
    assert split_listen(s.webhook_listen) == ("127.0.0.1", 8443)
    assert secret not in repr(s)
    assert secret in secrets_of(s, endpoints_from_settings(s))


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"TELEGRAM_WEBHOOK_URL": "https://bot.example.org/hook"},
            "TELEGRAM_WEBHOOK_SECRET is required when TELEGRAM_WEBHOOK_URL is set",
        ),
        (
            {"TELEGRAM_WEBHOOK_URL": "https://b.example/h", "TELEGRAM_WEBHOOK_SECRET": "a b"},
            "TELEGRAM_WEBHOOK_SECRET is invalid: must be 1 to 256 characters",
        ),
        (
            {"TELEGRAM_WEBHOOK_URL": "https://b.example/h", "TELEGRAM_WEBHOOK_SECRET": "s=cret"},
            "TELEGRAM_WEBHOOK_SECRET is invalid",
        ),
        (
            {"TELEGRAM_WEBHOOK_URL": "https://b.example/h", "TELEGRAM_WEBHOOK_SECRET": "x" * 257},
            "TELEGRAM_WEBHOOK_SECRET is invalid",
        ),
        ({"TELEGRAM_WEBHOOK_URL": "bot.example.org/hook"}, "TELEGRAM_WEBHOOK_URL is invalid"),
        ({"WEBHOOK_LISTEN": "8080"}, "WEBHOOK_LISTEN is invalid: must look like host:port"),
    ],
)
def test_bad_webhook_settings(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], says: str
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("IMAGE_API_BASE_URL", "https://relay.example/v1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=says) as caught:
        load_settings(_env_file=None)
    assert "s=cret" not in str(caught.value)


def test_split_listen_takes_ipv6() -> None:
    assert split_listen("[::1]:8080") == ("::1", 8080)


def test_every_setting_has_a_readme_row_and_an_env_example_line() -> None:
    """The README's table and .env.example are the runtime contract's documentation."""
    import re
    from pathlib import Path

    from bot.config import Settings

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", readme, re.MULTILINE))
    example = (root / ".env.example").read_text(encoding="utf-8")
    lines = set(re.findall(r"^(?:# )?([A-Z0-9_]+)=", example, re.MULTILINE))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - rows == set()
    assert fields - lines == set()
