"""What one image costs: the endpoint's configured prices, else the model profile's list price.

Relays set their own (`price_per_image` / `prices` in the providers file,
IMAGE_PRICE_PER_IMAGE / IMAGE_PRICES for one endpoint); Google's list prices are in
`bot/providers/profiles.py`.
"""

from __future__ import annotations

from bot.providers.base import Endpoint
from bot.providers.profiles import profile_for


def price_per_image(endpoint: Endpoint | None, model: str, image_size: str | None) -> float | None:
    if endpoint is not None:
        if model in endpoint.prices:
            return endpoint.prices[model]
        if endpoint.price_per_image is not None:
            return endpoint.price_per_image
    return profile_for(model, endpoint).price_for(image_size)
