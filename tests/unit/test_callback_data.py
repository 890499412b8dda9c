"""bot.telegram.callback_data: every button the bot can send round-trips, fits 64 bytes, and
today's strings (version 1) keep decoding; anything else decodes to None."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from telegram import CallbackQuery, InlineKeyboardMarkup, Update, User
from telegram.ext import Application, CallbackQueryHandler

from bot.app import add_handlers
from bot.providers.profiles import Capabilities
from bot.services import styles
from bot.services.prefs import LANGUAGES, MATCH_INPUT, RATIOS, REPLY_MODES, SIZES, Prefs
from bot.services.types import HistoryPage, HistoryRow, StoredImage
from bot.telegram import callback_data as cd
from bot.telegram.keyboards import (
    buy_keyboard,
    choices_keyboard,
    forget_keyboard,
    history_keyboard,
    packs_keyboard,
    ratio_keyboard,
    retry_keyboard,
    settings_keyboard,
    styles_keyboard,
)
from bot.telegram.replies import album_keyboard, reframe_keyboard, result_keyboard

BIG = 2**63 - 1  # the largest id SQLite can hand out
MODELS = (
    "gemini-2.5-flash-image",
    "gemini-3-pro-image-preview",
    "a/very-long-provider-prefixed-model-name-that-alone-would-not-fit-in-64-bytes-of-data",
)

# A model that takes every ratio and size, so every choice button is built.
CAN = Capabilities(MODELS[1], 14, RATIOS, SIZES, supports_n=True, real_history=True, grounding=True)


def _image(image_id: int) -> StoredImage:
    return StoredImage(image_id, "0" * 64, "image/png", 1024, 1024, 2_000_000, job_id=image_id)


def _prefs() -> list[Prefs]:
    return [
        Prefs(),
        Prefs(refine=False, aspect_ratio=MATCH_INPUT, image_size="4K", reply_mode="both"),
        Prefs(aspect_ratio="21:9", model=MODELS[2], language="zh"),
    ]


def _keyboards() -> Iterator[InlineKeyboardMarkup]:
    """Every keyboard the bot sends, built with realistic (and the largest) inputs."""
    for lang in ("en", "zh"):
        for job, image in ((1, 1), (42, 17), (BIG, BIG)):
            for variations in (False, True):
                yield result_keyboard(job, _image(image), lang, variations=variations)
                priced = (10**6, 4 * 10**6)  # paid mode: Stars on Regenerate and Variations
                yield result_keyboard(
                    job, _image(image), lang, variations=variations, prices=priced
                )
                yield result_keyboard(job, None, lang, variations=variations)
                for size in (None, "2K", "4K"):  # the follow-ups a model with sizes offers
                    yield result_keyboard(
                        job, _image(image), lang, variations=variations, can=CAN, size=size
                    )
                shown = [_image(image - i if image == BIG else image + i) for i in range(10)]
                yield album_keyboard(job, shown, lang, variations=variations)
                yield album_keyboard(job, shown[:3], lang, variations=variations)
            yield retry_keyboard(job, lang)
            yield reframe_keyboard(job, lang, CAN)
            own = [(BIG - i, "a-name-of-thirty-two-characters!"[: 32 - i]) for i in range(30)]
            for target in (0, image):
                yield styles_keyboard(lang, own, target)
        for current in (*RATIOS, MATCH_INPUT, None):
            for back in (False, True):
                yield ratio_keyboard(lang, current, CAN, back=back)
        for page, pages in ((0, 1), (0, 3), (1, 3), (2, 3), (BIG - 1, BIG)):
            entries = [
                HistoryRow(
                    _image(BIG - i), "a red car " * 20 if i % 2 else None, datetime(2026, 12, 1)
                )
                for i in range(5)
            ]
            yield history_keyboard(lang, HistoryPage(entries, page, pages, pages * 5))
        yield settings_keyboard(lang, CAN)
        yield packs_keyboard(lang, (1, 50, 200, 1000, 100_000))
        yield buy_keyboard(lang)
        for user_id in (1, 9999, BIG):
            yield forget_keyboard(lang, user_id)
        for prefs in _prefs():
            for setting in cd.SETTING_FIELDS:
                yield choices_keyboard(lang, setting, prefs, MODELS, MODELS[0], CAN)


def _all_data() -> list[str]:
    data = []
    for keyboard in _keyboards():
        for row in keyboard.inline_keyboard:
            for button in row:
                assert isinstance(button.callback_data, str), button
                data.append(button.callback_data)
    return data


def test_every_button_the_bot_sends_round_trips_and_fits_64_bytes() -> None:
    data = _all_data()
    for text in data:
        press = cd.decode(text)
        assert press is not None, text
        assert cd.encode(press) == text
        assert cd.decode(cd.encode(press)) == press
        assert len(text.encode()) <= cd.LIMIT, text
    # the walk reached every kind of button there is
    kinds = {type(cd.decode(text)) for text in data}
    assert kinds == set(cd.KINDS)


def test_every_kind_encodes_within_64_bytes_at_its_largest() -> None:
    largest: list[cd.CallbackData] = [
        cd.Regenerate(BIG),
        cd.Vary(BIG),
        cd.SendOriginal(BIG),
        cd.PickFromHistory(BIG),
        cd.TurnHistoryPage(BIG),
        cd.SetModel(BIG),
        cd.StartOver(),
        cd.OpenSettings(),
        cd.ToggleRefine(),
        cd.OpenBuy(),
        cd.BuyPack(BIG),
        cd.ToggleSearch(),
        cd.ConfirmForget(BIG),
        cd.KeepData(),
        cd.PickRatio(BIG),
        cd.OpenStyles(BIG),
        cd.ApplyOwnStyle(BIG, BIG),
        *(cd.Rerender(BIG, s) for s in SIZES),
        *(cd.Reframe(BIG, r) for r in RATIOS),
        *(cd.ApplyStyle(key, BIG) for key in styles.KEYS),
        *(cd.SetRatio(r) for r in (*RATIOS, MATCH_INPUT, None)),
        *(cd.OpenSetting(f) for f in cd.SETTING_FIELDS),
        *(cd.SetSize(s) for s in (*SIZES, None)),
        *(cd.SetReply(m) for m in REPLY_MODES),
        *(cd.SetLanguage(code) for code in (*LANGUAGES, None)),
    ]
    assert {type(p) for p in largest} == set(cd.KINDS)
    for press in largest:
        text = cd.encode(press)
        assert len(text.encode()) <= cd.LIMIT and cd.decode(text) == press, text


V1 = {
    "regen:12": cd.Regenerate(12),
    "var:12": cd.Vary(12),
    "orig:3": cd.SendOriginal(3),
    "new": cd.StartOver(),
    "ratio:16:9": cd.SetRatio("16:9"),
    "ratio:1:1": cd.SetRatio("1:1"),
    "ratio:match": cd.SetRatio(MATCH_INPUT),
    "ratio:auto": cd.SetRatio(None),
    "hist:3": cd.PickFromHistory(3),
    "histp:0": cd.TurnHistoryPage(0),
    "histp:1": cd.TurnHistoryPage(1),
    "set:menu": cd.OpenSettings(),
    "set:open:model": cd.OpenSetting("model"),
    "set:open:ratio": cd.OpenSetting("ratio"),
    "set:open:size": cd.OpenSetting("size"),
    "set:open:reply": cd.OpenSetting("reply"),
    "set:open:language": cd.OpenSetting("language"),
    "set:model:0": cd.SetModel(0),
    "set:size:2K": cd.SetSize("2K"),
    "set:size:auto": cd.SetSize(None),
    "set:reply:document": cd.SetReply("document"),
    "set:language:zh": cd.SetLanguage("zh"),
    "set:language:auto": cd.SetLanguage(None),
    "set:refine:toggle": cd.ToggleRefine(),
    "set:search:toggle": cd.ToggleSearch(),
    "ratio:8:1": cd.SetRatio("8:1"),
    "set:size:512": cd.SetSize("512"),
    "regen:9223372036854775807": cd.Regenerate(BIG),
}


@pytest.mark.parametrize("text", sorted(V1))
def test_the_strings_sent_before_the_codec_still_decode(text: str) -> None:
    """Buttons under old messages keep working after an upgrade: today's format is version 1."""
    assert cd.decode(text) == V1[text]
    assert cd.encode(V1[text]) == text


MALFORMED = (
    "",
    "bogus:1",
    "regen",
    "regen:",
    "regen:x",
    "regen:-1",
    "regen:+1",
    "regen: 1",
    "regen:1 ",
    "regen:1.0",
    "regen:1e3",
    "regen:007",
    "regen:١٢",
    "regen:¹",
    "regen:1:2",
    "regen:9223372036854775808",
    "regen:1234567890123456789012345678901234567890",
    "orig:99999999999999999999",
    "hist:9223372036854775808",
    "histp:1234567890123456789012345678901234567890",
    "var:12:",
    "REGEN:1",
    "new:",
    "new:1",
    "news",
    "ratio",
    "ratio:",
    "ratio:99:1",
    "ratio:16:9:1",
    "ratio:None",
    "ratio:Auto",
    "set",
    "set:",
    "set:menu:",
    "set:menu:1",
    "set:open",
    "set:open:",
    "set:open:bogus",
    "set:open:model:1",
    "set:model",
    "set:model:",
    "set:model:-1",
    "set:model:x",
    "set:size:8K",
    "up:1:8K",
    "up:1",
    "up:1:auto",
    "arp:1:16:9",
    "arj:1:99:1",
    "arj:1:match",
    "stg:x",
    "sty:bogus:1",
    "sty:clay",
    "sto:1",
    "sto:1:-1",
    "set:size:1k",
    "set:size:",
    "set:reply:email",
    "set:language:fr",
    "set:language:",
    "set:refine",
    "set:refine:on",
    "set:refine:toggle:1",
    "set:bogus:1",
    ":regen:1",
    "regen:1\n",
    "orig:3\x00",
    "hist:" + "1" * 59,  # 64 bytes, but no id that big
    "set:open:" + "é" * 28,  # 65 bytes of UTF-8
    "x" * 65,
)


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_data_decodes_to_none(text: str) -> None:
    assert cd.decode(text) is None


def test_non_strings_decode_to_none() -> None:
    assert cd.decode(None) is None
    assert cd.decode(12) is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: cd.Regenerate(-1),
        lambda: cd.Regenerate(2**63),
        lambda: cd.Regenerate(True),
        lambda: cd.SendOriginal("3"),  # type: ignore[arg-type]
        lambda: cd.SetRatio("99:1"),
        lambda: cd.SetSize("8K"),
        lambda: cd.SetReply("email"),
        lambda: cd.SetLanguage("auto"),
        lambda: cd.OpenSetting("bogus"),
    ],
)
def test_a_button_that_would_not_decode_cannot_be_built(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_each_kind_reaches_exactly_one_button_handler() -> None:
    app = Application.builder().token("1:test").build()
    add_handlers(app)
    handlers = [
        h for group in app.handlers.values() for h in group if isinstance(h, CallbackQueryHandler)
    ]
    for text in V1:
        matched = [h for h in handlers if h.pattern is not None and h.check_update(_press(text))]
        assert len(matched) == 1, text
    for text in MALFORMED[1:]:  # empty data is not a button; the gate answers it
        assert not [h for h in handlers if h.pattern is not None and h.check_update(_press(text))]


def _press(text: str) -> Update:
    query = CallbackQuery("1", User(1, "a", False), "1", data=text)
    return Update(1, callback_query=query)
