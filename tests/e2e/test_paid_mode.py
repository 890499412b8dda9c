"""Paid mode (PAID_MODE=stars) end to end: the real bot against the fake Bot API's payments
in Stars (sendInvoice, pre_checkout_query, successful_payment, answerPreCheckoutQuery,
refundStarPayment, getStarTransactions) and the fake image API, on a real SQLite file.

After every scenario `settled` checks the money: the balance /balance shows is the sum of the
account's ledger rows, and every job's reservation was settled at most once, its release
equal to what it held."""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.e2e.conftest import ProcessDb, RunningBot
from tests.e2e.helpers import button, db_rows
from tests.e2e.test_crash_recovery import _wait_for_rows, db_rows_at
from tests.e2e.test_process import _spawn, bot_env
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.telegram_api import Call, FakeTelegram

StartBot = Callable[..., Awaitable[RunningBot]]
ALICE, BOB, OWNER, ADMIN = 1001, 1002, 1003, 9999
GROUP, SPONSORED = -1001234567890, -1009876543210
PAID: dict[str, Any] = {"paid_mode": "stars", "star_packs": "10,50"}
MODEL = "gemini-2.5-flash-image"  # what the e2e harness runs, and the price below is for
PRICE = 4  # gemini-2.5-flash-image: $0.039 list price at 100 Stars per USD, rounded up


def _in(chat: int) -> Callable[[Call], bool]:
    return lambda c: str(c.params.get("chat_id")) == str(chat)


def _user(tg: FakeTelegram, user_id: int) -> dict[str, Any]:
    return tg.user(user_id, {ALICE: "Alice", BOB: "Bob", OWNER: "Olga"}.get(user_id, "Ann"))


def _chat_type(chat: int) -> str:
    return "private" if chat > 0 else "supergroup"


async def _next(tg: FakeTelegram, method: str, pred: Callable[[Call], bool]) -> Call:
    """The next `method` call matching `pred` from now on."""
    before = len([c for c in tg.calls_of(method) if c.response is not None and pred(c)])
    found = await tg.wait_for(method, pred, count=before + 1, timeout=20)
    return found[before]


async def _say(tg: FakeTelegram, chat: int, user: int, text: str, answer: str) -> Call:
    """Send `text` and wait for the bot's message in that chat that contains `answer`."""
    waiting = asyncio.ensure_future(
        _next(tg, "sendMessage", lambda c: _in(chat)(c) and answer in c.params["text"])
    )
    await asyncio.sleep(0)
    tg.send_text(chat, text, user=_user(tg, user), chat_type=_chat_type(chat))
    return await waiting


async def buy(tg: FakeTelegram, chat: int, user: int, pack: int) -> str:
    """/buy, the pack's button, Pay: returns the purchase's telegram_payment_charge_id."""
    menu = await _say(tg, chat, user, "/buy", "Pick a pack")
    invoice = asyncio.ensure_future(_next(tg, "sendInvoice", _in(chat)))
    await asyncio.sleep(0)
    tg.press_button(chat, menu.result["message_id"], f"buy:pack:{pack}", user=_user(tg, user))
    sent = await invoice
    thanks = asyncio.ensure_future(
        _next(tg, "sendMessage", lambda c: _in(chat)(c) and "credited" in c.params["text"])
    )
    await asyncio.sleep(0)
    query_id = tg.pay(chat, sent.result["message_id"], user=_user(tg, user))
    [answer] = await tg.wait_for(
        "answerPreCheckoutQuery", lambda c: c.params["pre_checkout_query_id"] == query_id
    )
    assert answer.ok and answer.params["ok"] in (True, "true")
    await thanks
    return str(tg.payments[-1]["successful_payment"]["telegram_payment_charge_id"])


async def shown_balance(tg: FakeTelegram, user: int) -> int:
    """The credits /balance shows the person, in their private chat."""
    answer = await _say(tg, user, user, "/balance", "Credits")
    found = re.search(r"Credits: <b>(-?\d+)</b>", answer.params["text"])
    assert found, answer.params["text"]
    return int(found.group(1))


def ledger_sum(bot: RunningBot, account: int) -> int:
    [(total,)] = db_rows(
        bot.settings, "SELECT coalesce(sum(amount), 0) FROM ledger WHERE account_id = ?", account
    )
    return int(total)


async def settled(bot: RunningBot, tg: FakeTelegram, *accounts: int) -> dict[int, int]:
    """Each account's shown balance equals its ledger's sum; each job was settled at most
    once (one reserve, one release equal to it, one charge at most); none is still held."""
    query = "SELECT job_id, kind, amount FROM ledger WHERE job_id IS NOT NULL"
    for _ in range(200):  # a job's result is sent before its reservation is settled
        rows = db_rows(bot.settings, query)
        held = Counter(job for job, kind, _ in rows if kind == "reserve")
        held.subtract(job for job, kind, _ in rows if kind == "release")
        if not +held:
            break
        await asyncio.sleep(0.05)
    by_job: dict[int, Counter[str]] = {}
    amounts: dict[tuple[int, str], int] = {}
    for job_id, kind, amount in rows:
        by_job.setdefault(job_id, Counter())[kind] += 1
        amounts[(job_id, kind)] = amount
    for job_id, kinds in by_job.items():
        assert set(kinds.values()) == {1}, (job_id, kinds)
        assert kinds["reserve"] == kinds["release"] == 1, (job_id, kinds)  # none held
        assert amounts[(job_id, "release")] == -amounts[(job_id, "reserve")]
    balances = {}
    for account in accounts:
        balances[account] = await shown_balance(tg, account)
        assert balances[account] == ledger_sum(bot, account), account
    return balances


def _photos(tg: FakeTelegram, chat: int) -> list[Call]:
    return [c for c in tg.calls_of("sendPhoto") if _in(chat)(c) and c.ok]


# ---------------------------------------------------------------------------------------------


async def test_a_purchase_is_credited_and_a_job_charged_on_delivery(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot(**PAID)
    charge_id = await buy(tg, ALICE, ALICE, 50)
    [invoice] = tg.calls_of("sendInvoice")
    # Telegram's rules for Stars: XTR, no provider token, one price, the pack in the payload
    assert invoice.params["currency"] == "XTR"
    assert not invoice.params.get("provider_token")
    assert [p["amount"] for p in invoice.params["prices"]] == [50]
    assert await settled(bot, tg, ALICE) == {ALICE: 50}
    [(kind, amount, charge)] = db_rows(
        bot.settings, "SELECT kind, amount, charge_id FROM ledger WHERE account_id = ?", ALICE
    )
    assert (kind, amount, charge) == ("purchase", 50, charge_id)

    tg.send_text(ALICE, "a red bicycle", user=_user(tg, ALICE))
    await tg.wait_for("sendPhoto", _in(ALICE))
    assert await settled(bot, tg, ALICE) == {ALICE: 50 - PRICE}
    kinds = db_rows(bot.settings, "SELECT kind, amount FROM ledger WHERE job_id IS NOT NULL")
    assert kinds == [("reserve", -PRICE), ("release", PRICE), ("charge", -PRICE)]
    # /balance lists the purchase and the charge
    answer = await _say(tg, ALICE, ALICE, "/balance", "Credits")
    assert charge_id in answer.params["text"] and f"−{PRICE} ⭐" in answer.params["text"]


async def test_a_failed_or_blocked_or_imageless_job_is_released(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot(**PAID)
    await buy(tg, ALICE, ALICE, 10)
    upstream.fail_next("400")  # a request fault: failed, not retried
    await _say(tg, ALICE, ALICE, "a cat", "rejected this request")
    assert await settled(bot, tg, ALICE) == {ALICE: 10}
    upstream.fail_next("content-filter")  # the relay's safety refusal (finish_reason)
    await _say(tg, ALICE, ALICE, "a forbidden cat", "safety filters")
    assert await settled(bot, tg, ALICE) == {ALICE: 10}
    upstream.answer_shape = "text-only"
    await _say(tg, ALICE, ALICE, "a cat in words", "without a picture")
    assert await settled(bot, tg, ALICE) == {ALICE: 10}
    assert not _photos(tg, ALICE) and len(upstream.requests) == 3
    statuses = db_rows(bot.settings, "SELECT status FROM jobs ORDER BY id")
    assert statuses == [("failed",), ("failed",), ("text_only",)]
    # three reservations, each released whole and nothing charged
    assert db_rows(bot.settings, "SELECT count(*) FROM ledger WHERE kind = 'charge'") == [(0,)]
    assert db_rows(bot.settings, "SELECT count(*) FROM ledger WHERE kind = 'release'") == [(3,)]
    upstream.answer_shape = "markdown-data"
    tg.send_text(ALICE, "a cat, really", user=_user(tg, ALICE))
    await tg.wait_for("sendPhoto", _in(ALICE))  # the next message works, and is charged
    assert await settled(bot, tg, ALICE) == {ALICE: 10 - PRICE}


async def test_a_short_balance_is_refused_with_a_buy_button_and_no_upstream_call(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot(**PAID)
    refusal = await _say(tg, ALICE, ALICE, "a red bicycle", "costs 4 ⭐ and you have 0 ⭐")
    assert not upstream.requests and not db_rows(bot.settings, "SELECT id FROM jobs")
    # the refusal's button leads to the packs, and buying there makes the next request work
    waiting = asyncio.ensure_future(
        _next(tg, "sendMessage", lambda c: _in(ALICE)(c) and "Pick a pack" in c.params["text"])
    )
    await asyncio.sleep(0)
    tg.press_button(ALICE, refusal.result["message_id"], button(refusal, "buy:menu"))
    packs = await waiting
    assert button(packs, "buy:pack:10") == "buy:pack:10" and button(packs, "buy:pack:50")
    await settled(bot, tg, ALICE)
    await buy(tg, ALICE, ALICE, 10)
    tg.send_text(ALICE, "a red bicycle", user=_user(tg, ALICE))
    await tg.wait_for("sendPhoto", _in(ALICE))
    assert len(upstream.requests) == 1
    assert await settled(bot, tg, ALICE) == {ALICE: 10 - PRICE}


async def test_a_redelivered_payment_is_credited_once_and_a_lost_one_at_the_next_start(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot(**PAID)
    charge_id = await buy(tg, ALICE, ALICE, 10)
    tg.redeliver_payment(charge_id)
    tg.redeliver_payment(charge_id)
    await _say(tg, ALICE, ALICE, "/balance", "Credits")  # after the redeliveries were read
    assert await settled(bot, tg, ALICE) == {ALICE: 10}
    thanks = [c for c in tg.calls_of("sendMessage") if "credited" in c.params["text"]]
    assert len(thanks) == 1
    # Paid, but the payment's update never reached the bot (it stopped between confirming
    # the update and crediting it): the next start finds it in getStarTransactions.
    invoice = tg.calls_of("sendInvoice")[0]
    query_id = tg.pay(ALICE, invoice.result["message_id"], user=_user(tg, ALICE), lose_update=True)
    await tg.wait_for(
        "answerPreCheckoutQuery", lambda c: c.params["pre_checkout_query_id"] == query_id
    )
    assert await settled(bot, tg, ALICE) == {ALICE: 10}
    await bot.restart()
    assert await settled(bot, tg, ALICE) == {ALICE: 20}
    await bot.restart()  # and only once
    assert await settled(bot, tg, ALICE) == {ALICE: 20} and tg.balance_of(ALICE) == 20
    assert db_rows(bot.settings, "SELECT count(*) FROM ledger WHERE kind = 'purchase'") == [(2,)]


async def test_checkout_refuses_a_pack_no_longer_sold_and_answers_within_the_time(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot(**PAID)
    menu = await _say(tg, ALICE, ALICE, "/buy", "Pick a pack")
    tg.press_button(ALICE, menu.result["message_id"], "buy:pack:50", user=_user(tg, ALICE))
    [invoice] = await tg.wait_for("sendInvoice")
    await bot.stop()
    bot.settings.star_packs = (10, 100)  # the owner stopped selling packs of 50
    await bot.start()
    query_id = tg.pay(ALICE, invoice.result["message_id"], user=_user(tg, ALICE))
    [answer] = await tg.wait_for(
        "answerPreCheckoutQuery", lambda c: c.params["pre_checkout_query_id"] == query_id
    )
    assert answer.ok and answer.params["ok"] in (False, "false")
    assert "no longer sold" in answer.params["error_message"]
    assert not tg.payments and tg.balance_of(ALICE) == 0
    # an old pack button says the same, and sends no invoice
    tg.press_button(ALICE, menu.result["message_id"], "buy:pack:50", user=_user(tg, ALICE))
    await asyncio.sleep(0.5)
    assert len(tg.calls_of("sendInvoice")) == 1
    assert any("no longer sold" in str(a.get("text")) for a in tg.callback_answers.values())
    assert await settled(bot, tg, ALICE) == {ALICE: 0}


async def test_refunds_take_the_unspent_part_and_say_when_a_purchase_was_spent(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot(**PAID)
    first = await buy(tg, ALICE, ALICE, 10)
    second = await buy(tg, BOB, BOB, 10)
    tg.send_text(BOB, "a blue kite", user=_user(tg, BOB))
    await tg.wait_for("sendPhoto", _in(BOB))
    assert await settled(bot, tg, ALICE, BOB) == {ALICE: 10, BOB: 10 - PRICE}

    # not an admin: refused, nothing refunded
    await _say(tg, ALICE, ALICE, f"/refund {first}", "Only the bot's admins")
    await _say(tg, ADMIN, ADMIN, f"/refund {first}", f"Refunded 10 ⭐ to user {ALICE}")
    assert first in tg.refunded and tg.balance_of(ALICE) == 0
    await _say(tg, ADMIN, ADMIN, f"/refund {first}", "refunded already")
    await _say(tg, ADMIN, ADMIN, "/refund stxAnot-a-charge", "No purchase has that charge id")
    # Bob spent part of his: the admin hears so, and only `force` refunds it
    await _say(tg, ADMIN, ADMIN, f"/refund {second}", f"{PRICE} of the 10 ⭐")
    assert second not in tg.refunded
    await _say(tg, ADMIN, ADMIN, f"/refund {second} force", f"{10 - PRICE} unspent")
    assert second in tg.refunded and tg.balance_of(BOB) == 0
    assert await settled(bot, tg, ALICE, BOB) == {ALICE: 0, BOB: 0}
    refunds = db_rows(bot.settings, "SELECT account_id, amount FROM ledger WHERE kind = 'refund'")
    assert sorted(refunds) == [(ALICE, -10), (BOB, -(10 - PRICE))]
    # Stars in and out beside the upstream cost
    stats = await _say(tg, ADMIN, ADMIN, "/stats", "Stars:")
    assert "20 bought, 16 refunded, 4 charged" in stats.params["text"]
    # a refund Telegram made that the ledger missed (the bot stopped in between) is
    # recorded by repeating it: Telegram says CHARGE_ALREADY_REFUNDED
    third = await buy(tg, ALICE, ALICE, 10)
    tg.refunded.add(third)
    await _say(tg, ADMIN, ADMIN, f"/refund {third}", "Refunded 10 ⭐")
    assert await settled(bot, tg, ALICE) == {ALICE: 0}


async def _ask_in_group(tg: FakeTelegram, chat: int, user: int, prompt: str) -> dict[str, Any]:
    return tg.send_text(chat, f"/imagine {prompt}", user=_user(tg, user), chat_type="supergroup")


async def test_in_a_group_each_person_pays_for_their_own_images(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot(**PAID)
    await buy(tg, ALICE, ALICE, 10)
    await buy(tg, BOB, BOB, 50)
    await _ask_in_group(tg, GROUP, ALICE, "a lighthouse")
    await tg.wait_for("sendPhoto", _in(GROUP))
    await _ask_in_group(tg, GROUP, BOB, "a harbour")
    await _ask_in_group(tg, GROUP, BOB, "a boat")
    await tg.wait_for("sendPhoto", _in(GROUP), count=3)
    assert await settled(bot, tg, ALICE, BOB) == {ALICE: 10 - PRICE, BOB: 50 - 2 * PRICE}
    # Ann has nothing: refused in the group, her refusal there, nothing upstream
    refusal = asyncio.ensure_future(
        _next(tg, "sendMessage", lambda c: _in(GROUP)(c) and "you have 0 ⭐" in c.params["text"])
    )
    await asyncio.sleep(0)
    await _ask_in_group(tg, GROUP, 1004, "a storm")
    refused = await refusal
    assert len(upstream.requests) == 3
    # her refusal's ⭐ Buy, the packs under her request, an invoice in the group: hers to pay
    ann = _user(tg, 1004)
    packs = asyncio.ensure_future(
        _next(tg, "sendMessage", lambda c: _in(GROUP)(c) and "Pick a pack" in c.params["text"])
    )
    await asyncio.sleep(0)
    tg.press_button(GROUP, refused.result["message_id"], button(refused, "buy:menu"), user=ann)
    menu = await packs
    tg.press_button(GROUP, menu.result["message_id"], "buy:pack:10", user=tg.user(ALICE))
    await asyncio.sleep(0.3)
    assert not tg.calls_of("sendInvoice")[2:]  # not Alice's button to press
    tg.press_button(GROUP, menu.result["message_id"], "buy:pack:10", user=ann)
    [*_, invoice] = await tg.wait_for("sendInvoice", count=3)
    assert invoice.params["chat_id"] == GROUP
    query_id = tg.pay(GROUP, invoice.result["message_id"], user=ann)
    await tg.wait_for(
        "answerPreCheckoutQuery", lambda c: c.params["pre_checkout_query_id"] == query_id
    )
    await tg.wait_for("sendMessage", lambda c: _in(GROUP)(c) and "credited" in c.params["text"])
    assert await settled(bot, tg, 1004) == {1004: 10}
    charges = db_rows(
        bot.settings, "SELECT account_id, chat_id FROM ledger WHERE kind = 'charge' ORDER BY id"
    )
    assert charges == [(ALICE, GROUP), (BOB, GROUP), (BOB, GROUP)]
    assert await settled(bot, tg, ALICE, BOB, 1004) == {ALICE: 6, BOB: 42, 1004: 10}


async def test_a_sponsored_group_charges_its_owner_within_the_daily_limit(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot(**PAID)
    tg.chat_admins[SPONSORED] = [OWNER, ALICE]  # Olga owns it, Alice is an admin
    await buy(tg, OWNER, OWNER, 50)
    await buy(tg, ALICE, ALICE, 10)
    group = SPONSORED
    reply = await _say(tg, group, ALICE, "/sponsor", "Only the group's owner")
    assert reply.params["chat_id"] == group
    await _say(tg, group, OWNER, f"/sponsor {2 * PRICE}", f"limit per day: {2 * PRICE} ⭐")
    for n, prompt in enumerate(("a fox", "a hare"), start=1):
        await _ask_in_group(tg, group, ALICE, prompt)
        await tg.wait_for("sendPhoto", _in(group), count=n)
    assert await settled(bot, tg, OWNER, ALICE) == {OWNER: 50 - 2 * PRICE, ALICE: 10}
    # the day's sponsorship is spent: Alice pays her own, Bob (nothing) is refused
    await _ask_in_group(tg, group, ALICE, "an owl")
    await tg.wait_for("sendPhoto", _in(group), count=3)
    refusal = asyncio.ensure_future(
        _next(tg, "sendMessage", lambda c: _in(group)(c) and "you have 0 ⭐" in c.params["text"])
    )
    await asyncio.sleep(0)
    await _ask_in_group(tg, group, BOB, "a badger")
    await refusal
    assert await settled(bot, tg, OWNER, ALICE, BOB) == {
        OWNER: 50 - 2 * PRICE,
        ALICE: 10 - PRICE,
        BOB: 0,
    }
    # another group is not sponsored by Olga's setting
    await _ask_in_group(tg, GROUP, ALICE, "a mole")
    await tg.wait_for("sendPhoto", _in(GROUP))
    await _say(tg, group, OWNER, "/sponsor off", "Sponsorship ended")
    assert await settled(bot, tg, OWNER, ALICE) == {OWNER: 42, ALICE: 10 - 2 * PRICE}
    assert len(upstream.requests) == 4


async def test_two_jobs_racing_for_the_last_credits_exactly_one_runs(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    """Olga sponsors two groups with enough for one image; Alice and Bob ask at once, one in
    each: no lock of theirs is shared, only the write that checks and reserves."""
    bot = await start_bot(paid_mode="stars", star_packs=str(PRICE))
    for group in (GROUP, SPONSORED):
        tg.chat_admins[group] = [OWNER]
        await _say(tg, group, OWNER, "/sponsor", "You now pay")
    await buy(tg, OWNER, OWNER, PRICE)
    upstream.hold_next()
    refused = asyncio.ensure_future(
        _next(tg, "sendMessage", lambda c: "you have 0 ⭐" in c.params["text"])
    )
    await asyncio.sleep(0)
    await _ask_in_group(tg, GROUP, ALICE, "a comet")
    await _ask_in_group(tg, SPONSORED, BOB, "a meteor")
    refusal = await refused
    await upstream.wait_requests(1)
    assert len(upstream.requests) == 1
    upstream.release()
    [photo] = await tg.wait_for("sendPhoto")
    assert {photo.params["chat_id"], refusal.params["chat_id"]} == {GROUP, SPONSORED}
    await asyncio.sleep(0.3)
    assert len(upstream.requests) == 1 and len(tg.calls_of("sendPhoto")) == 1
    assert await settled(bot, tg, OWNER, ALICE, BOB) == {OWNER: 0, ALICE: 0, BOB: 0}


async def test_the_free_allowance_comes_first_and_buttons_show_their_price(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot(**PAID, free_images_per_day=1, star_price_shown_above=PRICE - 1)
    tg.send_text(ALICE, "a tulip", user=_user(tg, ALICE))
    [photo] = await tg.wait_for("sendPhoto", _in(ALICE))  # free: no Stars needed
    regen = button(photo, "regen:")
    assert f"· {PRICE} ⭐" in str(photo.params["reply_markup"])  # the price before the press
    answer = await _say(tg, ALICE, ALICE, "/balance", "Credits")
    assert "Free images left today: 0 of 1" in answer.params["text"]
    waiting = asyncio.ensure_future(
        _next(tg, "sendMessage", lambda c: _in(ALICE)(c) and "costs 4 ⭐" in c.params["text"])
    )
    await asyncio.sleep(0)
    tg.press_button(ALICE, photo.result["message_id"], regen, user=_user(tg, ALICE))
    await waiting  # the second of the day is paid: refused with nothing to pay with
    assert len(upstream.requests) == 1
    await buy(tg, ALICE, ALICE, 10)
    tg.press_button(ALICE, photo.result["message_id"], regen, user=_user(tg, ALICE))
    await tg.wait_for("sendPhoto", _in(ALICE), count=2)
    assert await settled(bot, tg, ALICE) == {ALICE: 10 - PRICE}
    assert db_rows(bot.settings, "SELECT count(*) FROM ledger WHERE kind = 'reserve'") == [(1,)]


async def test_prices_under_the_threshold_are_not_on_the_buttons_and_off_means_free(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot(**PAID, star_price_shown_above=PRICE)
    await buy(tg, ALICE, ALICE, 10)
    tg.send_text(ALICE, "a tulip", user=_user(tg, ALICE))
    [photo] = await tg.wait_for("sendPhoto", _in(ALICE))
    assert "⭐" not in str(photo.params["reply_markup"])
    await bot.stop()
    bot.settings.paid_mode = "off"
    tg.calls.clear()
    await bot.start()
    await _say(tg, ALICE, ALICE, "/buy", "free to use")
    await _say(tg, ALICE, ALICE, "/balance", "free to use")
    tg.send_text(ALICE, "a rose", user=_user(tg, ALICE))
    [photo] = await tg.wait_for("sendPhoto", _in(ALICE))
    assert "⭐" not in str(photo.params["reply_markup"])
    # no /buy or /balance in the menus, and no ledger row for the free job
    assert "buy" not in str([c.params for c in tg.calls_of("setMyCommands")])
    assert db_rows(bot.settings, "SELECT count(*) FROM ledger WHERE job_id = 2") == [(0,)]
    assert ledger_sum(bot, ALICE) == 10 - PRICE  # what was bought stays for a later paid mode


async def test_a_crash_mid_job_is_settled_at_the_next_start(
    tmp_path: Path, tg: FakeTelegram, upstream: FakeImageAPI, process_db: ProcessDb
) -> None:
    """A real `python -m bot` killed with SIGKILL while the upstream holds a paid job: the
    next start releases what the job held and tells Alice (with a Retry), charging nothing."""
    env = bot_env(
        tmp_path,
        tg,
        upstream,
        PAID_MODE="stars",
        STAR_PACKS="10",
        IMAGE_MODEL=MODEL,
        REPLICA_LEASE_SECONDS="2",  # on PostgreSQL the dead one's jobs wait for its lease
        **process_db.env,
    )
    database = process_db.where
    first = await _spawn(env, tmp_path)
    output = asyncio.create_task(first.communicate())
    await buy(tg, ALICE, ALICE, 10)
    upstream.hold_next()
    tg.send_text(ALICE, "a paper boat", user=_user(tg, ALICE))
    await upstream.wait_requests(1)
    await _wait_for_rows(database, "SELECT count(*) FROM ledger WHERE kind = 'reserve'", 1)
    first.kill()
    await asyncio.wait_for(output, 30)
    held = db_rows_at(database, "SELECT kind, amount FROM ledger WHERE job_id IS NOT NULL")
    assert held == [("reserve", -PRICE)]

    second = await _spawn(env, tmp_path)
    output = asyncio.create_task(second.communicate())
    try:
        # the notice of the interruption, with its Retry (regen:) button
        await tg.wait_for(
            "sendMessage", lambda c: _in(ALICE)(c) and "regen:" in str(c.params.get("reply_markup"))
        )
        assert await shown_balance(tg, ALICE) == 10
        rows = db_rows_at(database, "SELECT kind, amount FROM ledger WHERE job_id IS NOT NULL")
        assert rows == [("reserve", -PRICE), ("release", PRICE)]
        sql = f"SELECT sum(amount) FROM ledger WHERE account_id = {ALICE}"
        [(total,)] = db_rows_at(database, sql)
        assert total == 10 and len(upstream.requests) == 1
    finally:
        second.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(output, 30)
    assert second.returncode == 0, err.decode()[-2000:]
    assert " ERROR " not in (out + err).decode()


async def test_checkout_refuses_someone_not_allowed_and_the_bot_still_answers_it(
    tg: FakeTelegram, upstream: FakeImageAPI, start_bot: StartBot
) -> None:
    bot = await start_bot(**PAID, allowed_user_ids=str(ALICE))
    menu = await _say(tg, ALICE, ALICE, "/buy", "Pick a pack")
    tg.press_button(ALICE, menu.result["message_id"], "buy:pack:10", user=_user(tg, ALICE))
    [invoice] = await tg.wait_for("sendInvoice")
    # Bob, who may not use the bot, pays the invoice Alice forwarded him: refused, unpaid
    query_id = tg.pay(ALICE, invoice.result["message_id"], user=_user(tg, BOB))
    [answer] = await tg.wait_for(
        "answerPreCheckoutQuery", lambda c: c.params["pre_checkout_query_id"] == query_id
    )
    assert answer.params["ok"] in (False, "false") and "can't use this bot" in str(
        answer.params["error_message"]
    )
    assert not tg.payments and tg.balance_of(BOB) == 0
    query_id = tg.pay(ALICE, invoice.result["message_id"], user=_user(tg, ALICE))
    await tg.wait_for("sendMessage", lambda c: _in(ALICE)(c) and "credited" in c.params["text"])
    assert await settled(bot, tg, ALICE) == {ALICE: 10}
    assert ledger_sum(bot, BOB) == 0
