"""What one image costs: the endpoint's configured prices, else the model profile's list price.

Relays set their own (`price_per_image` / `prices` in the providers file,
IMAGE_PRICE_PER_IMAGE / IMAGE_PRICES for one endpoint); Google's list prices are in
`bot/providers/profiles.py`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from bot.providers.base import Endpoint
from bot.providers.profiles import profile_for


def price_per_image(endpoint: Endpoint | None, model: str, image_size: str | None) -> float | None:
    if endpoint is not None:
        if model in endpoint.prices:
            return endpoint.prices[model]
        if endpoint.price_per_image is not None:
            return endpoint.price_per_image
    return profile_for(model, endpoint).price_for(image_size)


def stars_per_image(
    endpoint: Endpoint | None,
    model: str,
    image_size: str | None,
    *,
    stars_per_usd: float,
    overrides: Mapping[str, int],
    default: int,
) -> int:
    """What one image costs in paid mode, in whole Stars: STAR_PRICES (`model@size`, then
    `model`), else the USD price above converted at `stars_per_usd` and rounded up, else
    `default` for a model nobody priced. Never below 1 Star (Telegram's smallest amount)."""
    keys = (f"{model}@{image_size}", model) if image_size else (model,)
    for key in keys:
        if key in overrides:
            return max(1, overrides[key])
    usd = price_per_image(endpoint, model, image_size)
    if usd is None:
        return default
    # the epsilon keeps a float product such as 0.07 * 100 (7.000000000000001) at 7, not 8
    return max(1, math.ceil(usd * stars_per_usd - 1e-9))
