"""Every message the code can ask for exists in every language, with the same placeholders."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest

from bot.i18n import LANGS, lang_of, t
from bot.providers.errors import ProviderErrorKind

ROOT = Path(__file__).resolve().parents[2] / "bot"


def _catalog(lang: str) -> dict[str, str]:
    return json.loads((ROOT / "locales" / f"{lang}.json").read_text("utf-8"))


def _used_keys() -> set[str]:
    keys: set[str] = set()
    for path in ROOT.rglob("*.py"):
        text = path.read_text("utf-8")
        keys |= set(re.findall(r"\bt\(\s*\w+\s*,\s*\"([a-z_]+)\"", text))
        keys |= {f"err_{c}" for c in re.findall(r"UserInputError\(\s*\"([a-z_]+)\"", text)}
    keys |= {f"err_{k.value}" for k in ProviderErrorKind}
    keys |= {
        f"err_image_{c}"
        for c in ("empty", "not_image", "animated", "too_large_pixels", "unsupported")
    }
    keys |= {"err_quota_user", "err_quota_chat"}
    return keys


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


@pytest.mark.parametrize("lang", LANGS)
def test_every_used_key_exists(lang: str) -> None:
    missing = _used_keys() - set(_catalog(lang))
    assert not missing


def test_languages_have_the_same_keys_and_placeholders() -> None:
    en, zh = _catalog("en"), _catalog("zh")
    assert set(en) == set(zh)
    for key in en:
        assert _fields(en[key]) == _fields(zh[key]), key


def test_language_codes_and_escaping() -> None:
    assert [lang_of(c) for c in ("zh", "zh-hans", "zh_CN", "en-US", "de", None)] == [
        "zh",
        "zh",
        "zh",
        "en",
        "en",
        "en",
    ]
    assert "&lt;b&gt;" in t("en", "text_only", text="<b>")
