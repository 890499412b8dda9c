"""docker-compose.yml and its Caddyfile, read as Docker Compose and Caddy would: the services
are there and wired to each other, every bot setting is one the bot knows and validates, and
the proxy spreads requests over exactly the bot replicas (two), the path passed through."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.config import Settings, load_settings, split_listen
from bot.storage.s3blobs import S3Location

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
# What the operator's .env gives in the test (the compose file requires these there).
DOT_ENV = {
    "TELEGRAM_BOT_TOKEN": "123456:AAAA-compose-test-token",
    "IMAGE_API_BASE_URL": "https://relay.example/v1",
    "PUBLIC_HOST": "bot.example.org",
    "TELEGRAM_WEBHOOK_SECRET": "a-webhook-secret",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def interpolate(value: str) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, with DOT_ENV as the env."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in DOT_ENV:
            return DOT_ENV[name]
        if op == ":-":
            return arg or ""
        raise AssertionError(f"{name} is required but the test's .env lacks it")

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value).replace("$$", "$")


def bots(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == "nanobanana-bot" and "command" not in service
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {k: interpolate(str(v)) for k, v in service["environment"].items()}


def test_services_and_their_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "minio", "minio-bucket", "migrate", "bot-1", "bot-2", "proxy"} <= set(
        services
    )
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on unknown {needed}"
    for name in bots(compose):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["minio-bucket"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["python", "-m", "bot", "migrate"]
    assert set(services["proxy"]["depends_on"]) == set(bots(compose))
    declared = set(compose["volumes"])
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./") or source in declared, volume
            if source.startswith("./"):
                assert (ROOT / source).is_file(), volume


def test_every_bot_setting_is_known_and_valid(compose: dict[str, Any]) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for name, service in bots(compose).items():
        env = environment(service)
        unknown = set(env) - fields
        assert not unknown, f"{name}: unknown settings {unknown}"
        given = {k.lower(): v for k, v in {**DOT_ENV, **env}.items() if k in fields}
        settings = load_settings(_env_file=None, **given)
        database = urlsplit(settings.database_url)
        assert database.scheme == "postgresql+asyncpg"
        assert database.hostname in compose["services"]
        assert S3Location.parse(settings.blob_store_url).bucket == "nanobanana"
        assert urlsplit(settings.s3_endpoint_url).hostname in compose["services"]
        assert settings.log_format == "json"
        webhook = urlsplit(env["TELEGRAM_WEBHOOK_URL"])
        assert (webhook.scheme, webhook.hostname) == ("https", DOT_ENV["PUBLIC_HOST"])
        assert webhook.path.startswith("/") and len(webhook.path) > 1
        assert env["TELEGRAM_WEBHOOK_SECRET"] == DOT_ENV["TELEGRAM_WEBHOOK_SECRET"]
        assert split_listen(env["WEBHOOK_LISTEN"]) == ("0.0.0.0", 8080)
        assert settings.telegram_webhook_url == env["TELEGRAM_WEBHOOK_URL"]
        assert settings.webhook_secret == DOT_ENV["TELEGRAM_WEBHOOK_SECRET"]
        assert split_listen(settings.webhook_listen) == ("0.0.0.0", 8080)


def test_the_bucket_the_bots_use_is_the_one_created(compose: dict[str, Any]) -> None:
    services = compose["services"]
    script = " ".join(services["minio-bucket"]["command"])
    for service in bots(compose).values():
        bucket = S3Location.parse(environment(service)["BLOB_STORE_URL"]).bucket
        assert f"mc mb --ignore-existing local/{bucket}" in script
        minio = environment(services["minio"])
        env = environment(service)
        assert env["S3_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
        assert env["S3_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
        database = urlsplit(env["DATABASE_URL"])
        postgres = environment(services["postgres"])
        assert (database.username, database.password, database.path) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            "/" + postgres["POSTGRES_DB"],
        )


def test_bot_healthchecks_ask_healthz_where_the_bot_listens(compose: dict[str, Any]) -> None:
    for name, service in bots(compose).items():
        _host, port = split_listen(environment(service)["WEBHOOK_LISTEN"])
        probe = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in probe, name


def test_two_replicas_share_the_work(compose: dict[str, Any]) -> None:
    assert sorted(bots(compose)) == ["bot-1", "bot-2"]
    lease = {
        environment(service).get("REPLICA_LEASE_SECONDS") for service in bots(compose).values()
    }
    assert len(lease) == 1  # replicas judge each other's heartbeats alike


def test_the_proxy_spreads_over_every_replica_and_passes_the_path(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    [mount] = [v for v in proxy["volumes"] if v.endswith(":/etc/caddy/Caddyfile:ro")]
    caddyfile = (ROOT / mount.split(":")[0]).read_text(encoding="utf-8")
    lines = [line.split("#")[0].strip() for line in caddyfile.splitlines()]
    [upstreams] = [line.split()[1:] for line in lines if line.startswith("reverse_proxy ")]
    upstreams = [u for u in upstreams if u != "{"]
    expected = [
        f"{name}:{split_listen(environment(service)['WEBHOOK_LISTEN'])[1]}"
        for name, service in sorted(bots(compose).items())
    ]
    assert sorted(upstreams) == expected
    assert "health_uri /healthz" in lines
    assert "lb_policy round_robin" in lines
    # The path reaches the bot as Telegram sent it: nothing strips or rewrites it.
    assert not any(line.startswith(("handle_path", "uri ", "rewrite")) for line in lines)
    # The ops endpoints are not served to the world.
    assert "@ops path /metrics /readyz /healthz" in lines and "respond @ops 404" in lines
    assert {"80:80", "443:443"} <= set(proxy["ports"])


def test_the_image_installs_the_postgresql_driver(compose: dict[str, Any]) -> None:
    assert (ROOT / compose["x-bot"]["build"]).resolve() == ROOT
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    [install] = [line for line in dockerfile.splitlines() if line.startswith("RUN pip install")]
    assert "asyncpg" in install and "-c constraints.txt" in install
