"""The follow-ups under a result: only what its model takes, sizes above the one drawn."""

from __future__ import annotations

import pytest

from bot.providers.profiles import CLASSIC_RATIOS, Capabilities
from bot.services.types import StoredImage
from bot.telegram.replies import result_keyboard

PRO = Capabilities("gemini-3-pro-image", 14, CLASSIC_RATIOS, ("1K", "2K", "4K"), False, True)
FLASH2 = Capabilities(
    "gemini-3.1-flash-image", 14, CLASSIC_RATIOS, ("512", "1K", "2K", "4K"), False, True
)
FIXED = Capabilities("gemini-2.5-flash-image", 3, CLASSIC_RATIOS, (), False, False)
SQUARE = Capabilities("one-ratio-model", 1, ("1:1",), (), False, False)
IMAGE = StoredImage(7, "0" * 64, "image/png", 1024, 1024, 1000, job_id=3)


def _data(can: Capabilities, size: str | None, image: StoredImage | None = IMAGE) -> list[str]:
    keyboard = result_keyboard(3, image, "en", variations=False, can=can, size=size)
    return [str(b.callback_data) for row in keyboard.inline_keyboard for b in row]


@pytest.mark.parametrize(
    ("can", "size", "offered"),
    [
        (PRO, None, ["up:3:2K", "up:3:4K"]),
        (PRO, "1K", ["up:3:2K", "up:3:4K"]),
        (PRO, "2K", ["up:3:4K"]),
        (PRO, "4K", []),
        (FLASH2, "512", ["up:3:2K", "up:3:4K"]),
        (FIXED, None, []),
    ],
)
def test_sizes_above_the_one_drawn(can: Capabilities, size: str | None, offered: list[str]):
    assert [d for d in _data(can, size) if d.startswith("up:")] == offered


def test_ratio_only_for_a_model_with_a_choice_and_style_only_for_a_picture():
    assert "arp:3" in _data(FIXED, None) and "stg:7" in _data(FIXED, None)
    assert "arp:3" not in _data(SQUARE, None)
    assert not [d for d in _data(PRO, None, image=None) if d.startswith("stg:")]
    # Without a model (a caller that offers no follow-ups) the keyboard is as before.
    plain = result_keyboard(3, IMAGE, "en", variations=True)
    assert [str(b.callback_data) for row in plain.inline_keyboard for b in row] == [
        "regen:3",
        "orig:7",
        "new",
        "var:3",
    ]
