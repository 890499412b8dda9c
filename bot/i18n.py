"""Message catalogs (English, Simplified Chinese) chosen from the Telegram language code."""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources

DEFAULT_LANG = "en"
LANGS = ("en", "zh")


@cache
def _catalog(lang: str) -> dict[str, str]:
    text = resources.files("bot").joinpath("locales", f"{lang}.json").read_text("utf-8")
    data: dict[str, str] = json.loads(text)
    return data


def lang_of(language_code: str | None) -> str:
    """`zh`, `zh-hans`, `zh-CN` → zh; anything we lack → en."""
    if not language_code:
        return DEFAULT_LANG
    base = language_code.lower().replace("_", "-").split("-")[0]
    return base if base in LANGS else DEFAULT_LANG


def t(lang: str, key: str, **params: object) -> str:
    """A catalog message. Catalog texts are HTML; parameters are escaped into them."""
    catalog = _catalog(lang if lang in LANGS else DEFAULT_LANG)
    template = catalog.get(key) or _catalog(DEFAULT_LANG)[key]
    if not params:
        return template
    return template.format(**{k: html.escape(str(v), quote=False) for k, v in params.items()})
