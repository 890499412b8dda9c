"""What one image costs: the endpoint's configured prices, else Google's list price.

Google's list prices (ai.google.dev pricing, per image): gemini-2.5-flash-image $0.039 at
1024 px; the Gemini 3 Pro image models $0.134 at 1K/2K and $0.24 at 4K. Relays set their own
(`price_per_image` / `prices` in the providers file, IMAGE_PRICE_PER_IMAGE for one endpoint).
"""

from __future__ import annotations

from bot.providers.base import Endpoint

_LIST = {"gemini-2.5-flash-image": 0.039, "gemini-3-pro-image": 0.134}


def list_price(model: str, image_size: str | None) -> float | None:
    name = model.lower()
    if name.startswith("gemini-3") and "pro-image" in name:
        return 0.24 if image_size == "4K" else _LIST["gemini-3-pro-image"]
    if name in ("gemini-2.5-flash-image", "gemini-2.5-flash-image-preview"):
        return _LIST["gemini-2.5-flash-image"]
    return None


def price_per_image(endpoint: Endpoint | None, model: str, image_size: str | None) -> float | None:
    if endpoint is not None:
        if model in endpoint.prices:
            return endpoint.prices[model]
        if endpoint.price_per_image is not None:
            return endpoint.price_per_image
    return list_price(model, image_size)
