"""Stars per image in paid mode: STAR_PRICES first, else the USD price converted and rounded
up to whole Stars, else the default for a model nobody priced."""

from __future__ import annotations

from bot.providers.base import Endpoint
from bot.providers.pricing import stars_per_image


def _stars(endpoint: Endpoint | None, model: str, size: str | None, **kw: object) -> int:
    args: dict[str, object] = {"stars_per_usd": 100.0, "overrides": {}, "default": 10}
    args.update(kw)
    return stars_per_image(endpoint, model, size, **args)  # type: ignore[arg-type]


def test_list_prices_become_whole_stars_rounded_up() -> None:
    assert _stars(None, "gemini-2.5-flash-image", None) == 4  # $0.039
    assert _stars(None, "gemini-3-pro-image-preview", "2K") == 14  # $0.134
    assert _stars(None, "gemini-3-pro-image-preview", "4K") == 24  # $0.24, not 25
    assert _stars(None, "gemini-2.5-flash-image", None, stars_per_usd=1.0) == 1  # never 0


def test_the_endpoints_price_and_overrides_win_and_unknown_models_get_the_default() -> None:
    relay = Endpoint(
        name="relay",
        dialect="openai-chat",
        base_url="https://relay.example/v1",
        api_key="sk-test",
        price_per_image=0.07,
    )
    assert _stars(relay, "gemini-2.5-flash-image", None) == 7  # 0.07 * 100 is 7.000000000000001
    overrides = {"gemini-3-pro-image-preview@4K": 30, "gemini-3-pro-image-preview": 20}
    assert _stars(None, "gemini-3-pro-image-preview", "4K", overrides=overrides) == 30
    assert _stars(None, "gemini-3-pro-image-preview", "1K", overrides=overrides) == 20
    assert _stars(None, "some-new-model", None) == 10
