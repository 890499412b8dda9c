"""/usage and /stats answer with a chart: a PNG that Pillow decodes at the expected size, opaque
(readable in Telegram's dark theme too), drawn from the asker's own numbers."""

from __future__ import annotations

import io

from PIL import Image

from bot.charts import HEIGHT, WIDTH
from tests.e2e.conftest import RunningBot
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import Call, FakeTelegram

ALICE, BOB, ADMIN = 1001, 1002, 9999
BAR = (0x2F, 0x81, 0xF7)  # the first colour of bot/charts.py's palette


def _chart(call: Call) -> Image.Image:
    image = Image.open(io.BytesIO(call.files["photo"]))
    image.load()
    assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
    return image


def _opaque(image: Image.Image) -> bool:
    if image.mode != "RGBA":
        return image.mode == "RGB"
    low, _ = image.getchannel("A").getextrema()  # type: ignore[misc]
    return bool(low == 255)


def _bar_pixels(image: Image.Image) -> int:
    rgb = image.convert("RGB")
    return sum(n for n, color in rgb.getcolors(WIDTH * HEIGHT) or [] if color == BAR)


async def _draw(tg: FakeTelegram, user: int, n: int, done: int) -> None:
    for i in range(n):
        tg.send_text(user, "/new", user=tg.user(user))
        tg.send_text(user, f"picture {i} of {user}", user=tg.user(user))
        await tg.wait_for("sendPhoto", lambda c: c.params["chat_id"] == user, count=done + i + 1)


async def _usage(tg: FakeTelegram, user: int, lang: str = "en") -> Call:
    tg.send_text(user, "/usage", user=tg.user(user, language_code=lang))
    [answer] = await tg.wait_for(
        "sendPhoto",
        lambda c: (
            c.params["chat_id"] == user
            and "caption" in c.params
            and "regen:" not in str(c.params.get("reply_markup"))
        ),
    )
    return answer


async def test_usage_is_a_chart_of_ones_own_images_with_the_numbers(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot
):
    bot: RunningBot = await start_bot(daily_images_per_user=10)
    await _draw(tg, ALICE, 3, 0)
    await _draw(tg, BOB, 1, 0)
    alice, bob = await _usage(tg, ALICE), await _usage(tg, BOB)
    assert "You: 3 image(s) today, 7 left (limit 10)" in alice.params["caption"]
    assert "You: 1 image(s) today, 9 left (limit 10)" in bob.params["caption"]
    a, b = _chart(alice), _chart(bob)
    assert _opaque(a) and _opaque(b)
    # the same scale (the limit), so three images make a taller bar than one
    assert _bar_pixels(a) > 1.5 * _bar_pixels(b) > 0
    assert bot.settings.daily_images_per_user == 10


async def test_usage_chart_in_chinese_and_with_nothing_made_yet(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    answer = await _usage(tg, ALICE, "zh")
    assert "你：今天已生成 0 张" in answer.params["caption"]
    image = _chart(answer)
    assert _opaque(image) and _bar_pixels(image) == 0  # no bars: nothing made


async def test_stats_sends_the_tables_then_a_chart_by_model(
    tg: FakeTelegram, upstream: FakeImageAPI, bot: RunningBot
):
    tg.send_text(ADMIN, "/stats", user=tg.user(ADMIN))
    [empty] = await tg.wait_for("sendPhoto", lambda c: c.params["chat_id"] == ADMIN)
    assert _bar_pixels(_chart(empty)) == 0
    await _draw(tg, ALICE, 2, 0)
    await _draw(tg, BOB, 1, 0)
    tg.send_text(ADMIN, "/stats 14", user=tg.user(ADMIN))
    [_, text] = await tg.wait_for(
        "sendMessage", lambda c: "📊" in c.params.get("text", ""), count=2
    )
    assert "3 image(s) in 3 job(s)" in text.params["text"]
    [_, chart] = await tg.wait_for("sendPhoto", lambda c: c.params["chat_id"] == ADMIN, count=2)
    assert "14 days" in chart.params["caption"]
    assert chart.at > text.at  # the numbers first, then their picture
    image = _chart(chart)
    assert _opaque(image) and _bar_pixels(image) > 0
    tg.send_text(ALICE, "/stats", user=tg.user(ALICE))
    await tg.wait_for("sendMessage", lambda c: "Only the bot's admins" in c.params.get("text", ""))
    assert not [
        c
        for c in tg.calls_of("sendPhoto")
        if c.params["chat_id"] == ALICE and "days" in c.params.get("caption", "")
    ]
