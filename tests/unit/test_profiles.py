"""bot.providers.profiles: exact names, families, relay suffixes, the safe default (logged once),
overrides from a providers file, and what several endpoints serving one model can do."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.providers.base import DialectName, Endpoint
from bot.providers.pricing import price_per_image
from bot.providers.profiles import (
    CLASSIC_RATIOS,
    RATIOS,
    SAFE_DEFAULT,
    SIZES,
    Catalog,
    ModelProfile,
    ProfileOverride,
    ProfileRegistry,
    profile_for,
    successor_of,
)
from bot.providers.registry import ProvidersFileError, load_providers_file

PRO_SIZES = ("1K", "2K", "4K")


def endpoint(dialect: DialectName = "openai-chat", **kw: object) -> Endpoint:
    return Endpoint(name=dialect, dialect=dialect, base_url="https://r/v1", api_key="k", **kw)  # type: ignore[arg-type]


def test_exact_names() -> None:
    flash = profile_for("gemini-2.5-flash-image")
    assert (flash.max_input_images, flash.image_sizes, flash.price) == (3, (), 0.039)
    assert flash.aspect_ratios == CLASSIC_RATIOS
    pro = profile_for("gemini-3-pro-image")
    assert (pro.max_input_images, pro.image_sizes) == (14, PRO_SIZES)
    assert [pro.price_for(s) for s in (None, "1K", "2K", "4K")] == [0.134, 0.134, 0.134, 0.24]


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gemini-2.5-flash-image-preview", "gemini-2.5-flash-image"),
        ("models/gemini-3-pro-image-preview", "gemini-3-pro-image"),
        ("Gemini-3-Pro-Image-Preview", "gemini-3-pro-image"),
        ("gemini-3.1-flash-image-preview", "gemini-3.1-flash-image"),
        ("gemini-2.5-flash-image-preview-09-2025", "gemini-2.5-flash-image"),
        ("gemini-2.5-flash-image-20251002", "gemini-2.5-flash-image"),
        ("kling-v2", "kling"),
        ("kling-v1-5", "kling"),
    ],
)
def test_google_suffixes_and_prefix_families(model: str, family: str) -> None:
    assert profile_for(model).family == family


def test_google_suffixes_keep_the_list_price() -> None:
    assert profile_for("gemini-2.5-flash-image-preview").price == 0.039
    assert profile_for("gemini-3-pro-image-preview").price_for("4K") == 0.24


def test_a_relay_suffix_keeps_what_the_model_can_do_but_not_googles_price() -> None:
    hd = profile_for("gemini-2.5-flash-image-hd")
    assert hd.family == "gemini-2.5-flash-image" and hd.max_input_images == 3
    assert hd.price is None and hd.price_for("4K") is None


@pytest.mark.parametrize(
    ("model", "takes"),
    [
        ("gemini-3-pro-image-preview", True),
        ("gemini-3-pro-image", True),
        ("models/gemini-3-pro-image-preview", True),
        ("gemini-3.1-flash-image-preview", True),
        ("gemini-3.1-flash-image", True),
        ("nano-banana-pro", True),
        ("gemini-2.5-flash-image", False),
        ("gemini-2.5-flash-image-preview", False),
        ("gemini-2.5-flash-image-hd", False),
        ("gemini-2.0-flash-preview-image-generation", False),
        ("gemini-3-pro-preview", False),  # a text model
    ],
)
def test_which_models_take_an_image_size(model: str, takes: bool) -> None:
    assert bool(profile_for(model).image_sizes) is takes


def test_n_and_real_history_depend_on_the_dialect() -> None:
    flash = profile_for("gemini-2.5-flash-image")
    assert [flash.supports_n(d) for d in ("openai-images", "openai-chat", "gemini")] == [
        True,
        False,
        False,
    ]
    assert [flash.real_history(d) for d in ("openai-images", "openai-chat", "gemini")] == [
        False,
        False,
        True,
    ]


def test_an_unknown_model_gets_the_safe_default_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = ProfileRegistry()
    with caplog.at_level(logging.WARNING, "bot.providers.profiles"):
        for _ in range(3):
            unknown = registry.profile_for("acme-imagine-7")
        registry.profile_for("acme-imagine-8")
    assert unknown is SAFE_DEFAULT
    assert unknown.max_input_images == 3 and unknown.image_sizes == ()
    assert not any(unknown.supports_n(d) for d in ("openai-images", "openai-chat", "gemini"))
    assert not any(unknown.real_history(d) for d in ("openai-images", "openai-chat", "gemini"))
    assert unknown.price_for("1K") is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "acme-imagine-7" in lines[0] and "acme-imagine-8" in lines[1]


def test_adding_a_model_is_one_entry() -> None:
    new = ModelProfile("gemini-4-image", max_input_images=20, image_sizes=("2K",), price=0.1)
    registry = ProfileRegistry([new])
    assert registry.profile_for("gemini-4-image-preview") == new


def test_what_a_model_sends_is_what_its_profile_takes() -> None:
    flash, pro = profile_for("gemini-2.5-flash-image"), profile_for("gemini-3-pro-image")
    assert flash.sendable("16:9", "2K") == ("16:9", None)
    assert pro.sendable("16:9", "2k") == ("16:9", "2K")  # uppercase K (GI)
    assert pro.sendable("7:3", None) == (None, None)


PROVIDERS = """
[[endpoint]]
name = "qiniu"
dialect = "openai-images"
base_url = "https://api.qnaigc.com/v1"
api_key = "sk-q"
models = ["gemini-2.5-flash-image"]

[endpoint.profile]
max_input_images = 2
supports_n = false
aspect_ratios = ["1:1", "16:9"]

[[endpoint]]
name = "google"
dialect = "gemini"
base_url = "https://generativelanguage.googleapis.com"
api_key = "AIza"
prices = { "gemini-3-pro-image" = 0.2 }

[endpoint.profile]
image_sizes = ["1K", "2K"]
"""


def test_a_providers_file_overrides_a_profile_per_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "providers.toml"
    path.write_text(PROVIDERS)
    qiniu, google = load_providers_file(path)
    assert qiniu.profile == ProfileOverride(
        max_input_images=2, aspect_ratios=("1:1", "16:9"), supports_n=False
    )
    flash = profile_for("gemini-2.5-flash-image", qiniu)
    assert flash.max_input_images == 2 and flash.aspect_ratios == ("1:1", "16:9")
    assert not flash.supports_n("openai-images")
    assert flash.price == 0.039  # not overridden: Google's list price
    assert profile_for("gemini-3-pro-image", google).image_sizes == ("1K", "2K")
    assert profile_for("gemini-3-pro-image").image_sizes == PRO_SIZES  # others unchanged
    # An endpoint's own prices keep winning over the profile's.
    assert price_per_image(google, "gemini-3-pro-image", "4K") == 0.2
    assert price_per_image(qiniu, "gemini-3-pro-image", "4K") == 0.24


@pytest.mark.parametrize(
    ("table", "where"),
    [
        ('aspect_ratios = ["7:3"]', "aspect_ratios"),
        ('image_sizes = ["8K"]', "image_sizes"),
        ("max_input_images = 0", "max_input_images"),
        ("candidates = 2", "candidates"),
    ],
)
def test_a_wrong_profile_table_is_a_clear_error(tmp_path: Path, table: str, where: str) -> None:
    path = tmp_path / "providers.toml"
    path.write_text(
        '[[endpoint]]\nname = "r"\ndialect = "gemini"\nbase_url = "https://r"\n'
        f"[endpoint.profile]\n{table}\n"
    )
    with pytest.raises(ProvidersFileError, match=f"endpoint #1 profile.{where}"):
        load_providers_file(path)


def test_a_catalog_takes_what_every_endpoint_serving_the_model_takes() -> None:
    images = endpoint("openai-images", profile=ProfileOverride(max_input_images=2))
    gemini = endpoint("gemini", models=("gemini-3-pro-image",))
    catalog = Catalog([images, gemini])
    pro = catalog.capabilities("gemini-3-pro-image")
    assert pro.max_input_images == 2 and pro.image_sizes == PRO_SIZES
    assert not pro.supports_n and not pro.real_history  # gemini takes no n, images no history
    assert not pro.grounding  # the images endpoint has no search tool
    flash = catalog.capabilities("gemini-2.5-flash-image")  # only the images endpoint serves it
    assert flash.supports_n and not flash.real_history and flash.max_input_images == 2


def test_a_catalog_of_one_dialect() -> None:
    assert Catalog.of_dialect("gemini").capabilities("gemini-2.5-flash-image").real_history
    assert not Catalog.of_dialect("openai-chat").capabilities("gemini-2.5-flash-image").supports_n
    assert Catalog.of_dialect("openai-images").capabilities("gemini-3-pro-image").supports_n


# --- the three families of 2026 (issue 13) ---------------------------------------------------

FAMILIES = {
    # family: (input images, ratios, sizes, grounding on gemini, {size: list price})
    "gemini-2.5-flash-image": (3, CLASSIC_RATIOS, (), False, {None: 0.039, "1K": 0.039}),
    "gemini-3-pro-image": (
        14,
        CLASSIC_RATIOS,
        PRO_SIZES,
        True,
        {None: 0.134, "1K": 0.134, "2K": 0.134, "4K": 0.24},
    ),
    "gemini-3.1-flash-image": (
        14,
        (*CLASSIC_RATIOS, "1:4", "4:1", "1:8", "8:1"),
        ("512", "1K", "2K", "4K"),
        True,
        {"512": 0.045, "1K": 0.067, "2K": 0.101, "4K": 0.151},
    ),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_takes_exactly_what_googles_docs_list(family: str) -> None:
    inputs, ratios, sizes, grounding, prices = FAMILIES[family]
    for name in (family, f"{family}-preview", f"google/{family}-preview", f"{family}-hd"):
        profile = profile_for(name)
        assert profile.family == family, name
        assert (profile.max_input_images, profile.aspect_ratios, profile.image_sizes) == (
            inputs,
            ratios,
            sizes,
        ), name
        assert profile.grounding("gemini") is grounding, name
        assert not profile.grounding("openai-chat") and not profile.grounding("openai-images")
    listed = profile_for(family)
    assert {size: listed.price_for(size) for size in prices} == prices
    assert profile_for(f"{family}-hd").price_for("1K") is None  # the relay's own price


def test_every_choice_a_chat_can_make_belongs_to_some_family() -> None:
    assert set(RATIOS) == {r for f in FAMILIES.values() for r in f[1]}
    assert set(SIZES) == {s for f in FAMILIES.values() for s in f[2]}


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("google/gemini-3-pro-image-preview", "gemini-3-pro-image"),  # OpenRouter
        ("google/gemini-3.1-flash-image-preview", "gemini-3.1-flash-image"),
        ("vertex_ai/gemini-2.5-flash-image", "gemini-2.5-flash-image"),
        ("models/gemini-3.1-flash-image", "gemini-3.1-flash-image"),
        ("gemini-3.1-flash-image-preview-02-2026", "gemini-3.1-flash-image"),
    ],
)
def test_vendor_prefixes_resolve_to_a_family(model: str, family: str) -> None:
    assert profile_for(model).family == family


def test_an_unknown_name_with_a_vendor_prefix_gets_the_safe_default_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = ProfileRegistry()
    with caplog.at_level(logging.WARNING, logger="bot.providers.profiles"):
        assert registry.profile_for("acme/banana-9000") is SAFE_DEFAULT
        assert registry.profile_for("acme/banana-9000") is SAFE_DEFAULT
    assert [r.getMessage() for r in caplog.records].count(
        "model 'acme/banana-9000' has no profile: using the safe default"
    ) == 1
    assert SAFE_DEFAULT.image_sizes == () and not SAFE_DEFAULT.grounding("gemini")


@pytest.mark.parametrize(
    ("retired", "successor"),
    [
        ("gemini-2.5-flash-image", "gemini-3.1-flash-image"),
        ("gemini-2.5-flash-image-preview", "gemini-3.1-flash-image"),
        ("gemini-2.5-flash-image-hd", "gemini-3.1-flash-image"),
        ("gemini-3-pro-image-preview", "gemini-3-pro-image"),
        ("gemini-3.1-flash-image-preview", "gemini-3.1-flash-image"),
        ("google/gemini-3-pro-image-preview", "gemini-3-pro-image"),
        ("gemini-3.1-flash-image", None),  # today's model: nobody knows a successor yet
        ("banana-9000", None),
    ],
)
def test_a_retired_model_names_its_successor(retired: str, successor: str | None) -> None:
    assert successor_of(retired) == successor


def test_sizes_are_sent_as_google_spells_them() -> None:
    flash = profile_for("gemini-3.1-flash-image")
    assert flash.sendable("8:1", "2k") == ("8:1", "2K")
    assert flash.sendable("1:1", "0.5k") == ("1:1", "512")
    assert profile_for("gemini-3-pro-image").sendable("8:1", "512") == (None, None)
    assert profile_for("gemini-2.5-flash-image").sendable("21:9", "4K") == ("21:9", None)


def test_a_catalog_grounds_only_where_every_serving_endpoint_can() -> None:
    gemini = endpoint("gemini")
    chat = endpoint("openai-chat")
    assert Catalog([gemini]).capabilities("gemini-3.1-flash-image").grounding
    assert not Catalog([gemini]).capabilities("gemini-2.5-flash-image").grounding
    assert not Catalog([gemini, chat]).capabilities("gemini-3-pro-image").grounding
