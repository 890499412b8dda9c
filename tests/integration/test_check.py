"""`python -m bot check` against the fake image API, knowing only a base URL and a key: it finds
the dialect and auth style of each kind of endpoint, announces every generation it sends (one
per dialect that answers, at most), and `--dry-run` sends nothing billable."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.check import AUTH_ORDER, Discovery, discover, env_lines, pick_model, report
from bot.config import Settings
from bot.providers.base import AuthStyle
from tests.fakes.image_api import FakeImageAPI

KEY = "sk-check-0123456789abcdef"
DEFAULT_MODEL = str(Settings.model_fields["image_model"].default)
GOOGLE_KEY = "AIzaSyCheck0123456789abcdefghijklmnop"


@pytest.fixture
async def fakes() -> AsyncIterator[list[FakeImageAPI]]:
    made: list[FakeImageAPI] = []
    yield made
    for fake in made:
        await fake.stop()


async def _fake(
    made: list[FakeImageAPI], serves: set[str], auth: str, key: str = KEY, **knobs: object
) -> FakeImageAPI:
    fake = FakeImageAPI(api_key=key, auth_style=auth)
    fake.serves = serves
    fake.output_size = (32, 32)
    for name, value in knobs.items():
        setattr(fake, name, value)
    await fake.start()
    made.append(fake)
    return fake


async def _discover(url: str, key: str, **kw: object) -> tuple[Discovery, list[str]]:
    said: list[str] = []
    found = await discover(url, key, say=said.append, **kw)  # type: ignore[arg-type]
    said.append(report(found, dry_run=bool(kw.get("dry_run"))))
    return found, said


def _generations(fake: FakeImageAPI) -> list[str]:
    return [r.path for r in fake.requests if not r.path.endswith("/models")]


# Each kind of endpoint, in each auth style it could take: (serves, auth, expected dialect).
KINDS = [
    ({"gemini"}, "x-goog-api-key", "gemini"),  # Google AI Studio
    ({"gemini"}, "query-key", "gemini"),  # Google with ?key=
    ({"gemini"}, "bearer", "gemini"),  # aaigc (seed 003)
    ({"openai-chat"}, "bearer", "openai-chat"),  # AICore (seeds 000/001), OpenRouter
    ({"openai-chat"}, "raw", "openai-chat"),  # Rainboxs (seed 004)
    ({"openai-images"}, "bearer", "openai-images"),  # Qiniu (seed 002)
    ({"openai-images"}, "x-goog-api-key", "openai-images"),
    ({"openai-chat", "openai-images", "gemini"}, "bearer", "gemini"),  # new-api: all three
]


@pytest.mark.parametrize(("serves", "auth", "dialect"), KINDS)
async def test_finds_dialect_and_auth_from_base_url_and_key_alone(
    fakes: list[FakeImageAPI], serves: set[str], auth: str, dialect: str
) -> None:
    fake = await _fake(fakes, serves, auth)
    base = fake.root if dialect == "gemini" else f"{fake.root}/v1"
    found, said = await _discover(f"{fake.root}/v1", KEY)
    paste = env_lines(found, dry_run=False)
    assert paste[:2] == [f"IMAGE_API_DIALECT={dialect}", f"IMAGE_API_BASE_URL={base}"]
    assert f"IMAGE_API_AUTH={auth}" in paste and f"IMAGE_MODEL={DEFAULT_MODEL}" in paste
    assert KEY not in "\n".join(said)
    # every generation was announced before it went, and each dialect that answered got one
    announced = [line for line in said if line.startswith("Sending one tiny generation")]
    assert len(announced) == len(_generations(fake))
    working = [p for p in found.probes if p.works]
    assert sorted(p.dialect for p in working) == sorted(serves)
    assert fake.charges == len(working) and fake.charges <= 3
    # the models it lists are printed
    assert "gemini-3.1-flash-image" in said[-1]


async def test_a_wrong_key_works_nowhere_and_bills_nothing(fakes: list[FakeImageAPI]) -> None:
    fake = await _fake(fakes, {"openai-chat", "gemini"}, "bearer")
    found, said = await _discover(fake.root, "sk-wrong-key-0123456789")
    assert found.best() is None and fake.charges == 0
    assert "Nothing worked" in said[-1] and "sk-wrong-key-0123456789" not in "\n".join(said)
    # refused in every style, so each dialect it serves tried all four, none billable; the
    # one it lacks answered 404 at once
    assert len(_generations(fake)) == 2 * len(AUTH_ORDER["gemini"]) + 1


async def test_dry_run_only_lists_models(fakes: list[FakeImageAPI]) -> None:
    fake = await _fake(fakes, {"openai-chat"}, "raw")
    found, said = await _discover(f"{fake.root}/v1", KEY, dry_run=True)
    assert all(r.path.endswith("/models") for r in fake.requests) and fake.answers_200 == 0
    assert not found.probes
    assert {r.path for r in fake.requests} == {"/v1/models", "/v1beta/models"}
    assert env_lines(found, dry_run=True)[0] == "IMAGE_API_DIALECT=openai-chat"
    assert "IMAGE_API_AUTH=raw" in said[-1]
    assert not any(line.startswith("Sending") for line in said)


async def test_a_relay_without_model_lists_is_still_found_by_a_generation(
    fakes: list[FakeImageAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = await _fake(fakes, {"openai-chat"}, "raw")

    async def no_list(request: object) -> object:
        from aiohttp import web

        return web.Response(status=404, text="404 page not found")

    monkeypatch.setattr(fake, "_models", lambda request, dialect: no_list(request))
    found, _ = await _discover(f"{fake.root}/v1", KEY)
    assert (found.best().dialect, found.best().auth) == ("openai-chat", "raw")  # type: ignore[union-attr]
    # openai-chat: bearer refused (free), raw worked; billed once
    assert fake.charges == 1


async def test_openrouter_style_base_url_keeps_its_path(fakes: list[FakeImageAPI]) -> None:
    fake = await _fake(
        fakes,
        {"openai-chat"},
        "bearer",
        models=["openai/gpt-5", "google/gemini-3-pro-image-preview"],
    )
    found, said = await _discover(f"{fake.root}/api/v1", KEY)
    paste = env_lines(found, dry_run=False)
    assert f"IMAGE_API_BASE_URL={fake.root}/api/v1" in paste
    assert "IMAGE_MODEL=google/gemini-3-pro-image-preview" in paste
    # its gemini list is not found while its openai one is: no generation sent that way
    assert "Not trying gemini" in "\n".join(said)
    assert not any("generateContent" in r.path for r in fake.requests)


def test_pick_model_prefers_the_default_then_any_image_model() -> None:
    assert pick_model(["x", DEFAULT_MODEL]) == DEFAULT_MODEL
    assert pick_model(["x", f"google/{DEFAULT_MODEL}"]) == f"google/{DEFAULT_MODEL}"
    assert pick_model(["gpt-5", "vendor/gemini-3-pro-image"]) == "vendor/gemini-3-pro-image"
    assert pick_model([], "mine") == "mine"


def test_every_auth_style_is_tried() -> None:
    from typing import get_args

    styles = set(get_args(AuthStyle))
    assert set(AUTH_ORDER["gemini"]) == styles == set(AUTH_ORDER["openai"])


# --- as a process -------------------------------------------------------------------------


async def _run(args: list[str], key: str, tmp_path: Path) -> tuple[int, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "IMAGE_", "ALLOWED_", "ADMIN_"))
    }
    env["IMAGE_API_KEY"] = key
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "check",
        *args,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_python_m_bot_check_with_only_a_base_url_and_a_key(
    fakes: list[FakeImageAPI], tmp_path: Path
) -> None:
    fake = await _fake(fakes, {"gemini"}, "x-goog-api-key", key=GOOGLE_KEY)
    code, out = await _run(["--base-url", fake.root], GOOGLE_KEY, tmp_path)
    assert code == 0, out
    assert "IMAGE_API_DIALECT=gemini" in out and "IMAGE_API_AUTH=x-goog-api-key" in out
    assert GOOGLE_KEY not in out and fake.charges == 1
    assert out.index("Sending one tiny generation") < out.index("Paste into .env")


async def test_python_m_bot_check_dry_run_sends_nothing_billable(
    fakes: list[FakeImageAPI], tmp_path: Path
) -> None:
    fake = await _fake(fakes, {"gemini"}, "query-key", key=GOOGLE_KEY)
    code, out = await _run(["--base-url", fake.root, "--dry-run"], GOOGLE_KEY, tmp_path)
    assert code == 0, out
    assert all(r.path.endswith("/models") for r in fake.requests) and fake.answers_200 == 0
    assert "IMAGE_API_AUTH=query-key" in out and GOOGLE_KEY not in out
    assert all(
        GOOGLE_KEY not in str(r.query) or r.query.get("key") == GOOGLE_KEY for r in fake.requests
    )


async def test_dry_run_of_the_configured_endpoints_lists_their_models(
    fakes: list[FakeImageAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.check import list_configured
    from bot.config import load_settings

    fake = await _fake(fakes, {"gemini"}, "query-key", key=GOOGLE_KEY)
    for name, value in {
        "TELEGRAM_BOT_TOKEN": "123456:ABCdefGHIjklMNOpqrSTUvwxYZ012345678",
        "IMAGE_API_DIALECT": "gemini",
        "IMAGE_API_BASE_URL": fake.root,
        "IMAGE_API_KEY": GOOGLE_KEY,
        "IMAGE_API_AUTH": "query-key",
    }.items():
        monkeypatch.setenv(name, value)
    said: list[str] = []
    assert await list_configured(load_settings(_env_file=None), said.append)
    assert [r.path for r in fake.requests] == ["/v1beta/models"] and fake.answers_200 == 0
    assert "gemini-3-pro-image" in said[-1] and said[0].startswith("default (gemini, query-key)")
