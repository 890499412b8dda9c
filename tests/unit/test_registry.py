"""The providers file: endpoints, keys from the environment, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.providers.registry import ProvidersFileError, load_providers_file

GOOD = """
[[endpoint]]
name = "rainboxs"
dialect = "openai-chat"
base_url = "https://api.rainboxs.com/v1/"
api_key_env = "RB_KEY"
auth = "raw"
models = ["gemini-2.5-flash-image", "gemini-2.5-flash-image-hd"]
price_per_image = 0.028
extra_body = { group = "default" }

[[endpoint]]
name = "google"
dialect = "gemini"
base_url = "https://generativelanguage.googleapis.com"
api_key = "AIza-literal"
auth = "x-goog-api-key"
"""


def test_loads_endpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RB_KEY", "sk-from-env")
    path = tmp_path / "providers.toml"
    path.write_text(GOOD)
    rb, google = load_providers_file(path)
    assert rb.base_url == "https://api.rainboxs.com/v1"
    assert rb.auth_headers() == {"Authorization": "sk-from-env"}
    assert rb.models == ("gemini-2.5-flash-image", "gemini-2.5-flash-image-hd")
    assert rb.price_per_image == 0.028 and rb.extra_body == {"group": "default"}
    assert google.auth_headers() == {"x-goog-api-key": "AIza-literal"}
    assert "sk-from-env" not in repr(rb)
    assert (rb.min_concurrency, rb.max_concurrency) == (1, 128)  # adaptive between these


def test_concurrency_bounds_of_an_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        "[[endpoint]]\nname='fixed'\ndialect='gemini'\nbase_url='https://x'\n"
        "min_concurrency=4\nmax_concurrency=4\n"
        "[[endpoint]]\nname='capped'\ndialect='gemini'\nbase_url='https://y'\n"
        "max_concurrency=4\n"
    )
    fixed, capped = load_providers_file(path)
    assert (fixed.min_concurrency, fixed.max_concurrency) == (4, 4)
    assert (capped.min_concurrency, capped.max_concurrency) == (1, 4)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "no [[endpoint]]"),
        ("[[endpoint]]\nname='a'\ndialect='dalle'\nbase_url='https://x'", "dialect"),
        ("[[endpoint]]\nname='a'\ndialect='gemini'\nbase_url='x'", "base_url"),
        (
            "[[endpoint]]\nname='a'\ndialect='gemini'\nbase_url='https://x'\napi_key_env='NOPE_X'",
            "NOPE_X is not set",
        ),
        (
            "[[endpoint]]\nname='a'\ndialect='gemini'\nbase_url='https://x'\n"
            "[[endpoint]]\nname='a'\ndialect='gemini'\nbase_url='https://y'",
            "unique",
        ),
        ("[[endpoint]\n", "not valid TOML"),
        ("[[endpoint]]\nname='a'\ndialect='gemini'\nbase_url='https://x'\ncolour='red'", "colour"),
        (
            "[[endpoint]]\nname='a'\ndialect='gemini'\nbase_url='https://x'\n"
            "min_concurrency=8\nmax_concurrency=4",
            "min_concurrency must not exceed max_concurrency",
        ),
    ],
)
def test_errors_say_what_is_wrong(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ProvidersFileError) as info:
        load_providers_file(path)
    assert needle in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProvidersFileError, match="cannot read"):
        load_providers_file(tmp_path / "nope.toml")


def test_stream_is_on_for_google_unless_said_and_off_for_relays_unless_said(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        "[[endpoint]]\nname='google'\ndialect='gemini'\n"
        "base_url='https://generativelanguage.googleapis.com'\n"
        "[[endpoint]]\nname='google-whole'\ndialect='gemini'\n"
        "base_url='https://generativelanguage.googleapis.com'\nstream=false\n"
        "[[endpoint]]\nname='relay'\ndialect='gemini'\nbase_url='https://relay.example/v1beta'\n"
        "[[endpoint]]\nname='relay-sse'\ndialect='gemini'\nbase_url='https://relay.example'\n"
        "stream=true\n"
    )
    streams = {e.name: e.streams() for e in load_providers_file(path)}
    assert streams == {"google": True, "google-whole": False, "relay": False, "relay-sse": True}
    path.write_text(
        "[[endpoint]]\nname='x'\ndialect='gemini'\nbase_url='https://x'\nstream='maybe'\n"
    )
    with pytest.raises(ProvidersFileError, match="stream"):
        load_providers_file(path)
