"""Paid mode (PAID_MODE=stars): /buy, its invoices in Telegram Stars, the checkout, the
payment, /balance, /sponsor for a group's owner and /refund for admins.

Telegram's rules (core.telegram.org/bots/payments-stars): an invoice in XTR has no provider
token and exactly one price; a pre-checkout query is answered within 10 seconds or the
payment fails; the Stars are only taken once the bot said yes, and the `successful_payment`
message that follows is what credits the payer, once per `telegram_payment_charge_id`.
"""

from __future__ import annotations

import logging

from telegram import LabeledPrice, Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ContextTypes

from bot.i18n import lang_of, t
from bot.services.payments import CURRENCY, Wallet
from bot.telegram import callback_data as cd
from bot.telegram.context import SERVICES_KEY, Services, lang, services, who_of
from bot.telegram.keyboards import packs_keyboard

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
#: Telegram's answers to refundStarPayment that mean "nothing (more) to give back".
ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"
STAR_PAGE = 100  # getStarTransactions' largest page


def _wallet(context: Context) -> Wallet | None:
    return services(context).wallet


async def _reply(update: Update, text: str, **kwargs: object) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(text, **kwargs)  # type: ignore[arg-type]


async def _paid_mode(update: Update, context: Context) -> Wallet | None:
    """The wallet, or None after telling the person paid mode is off."""
    wallet = _wallet(context)
    if wallet is None:
        await _reply(update, t(lang(update, context), "paid_mode_off"))
    return wallet


async def cmd_buy(update: Update, context: Context) -> None:
    """The credit packs (STAR_PACKS), one button each."""
    wallet = await _paid_mode(update, context)
    if wallet is None:
        return
    lng = lang(update, context)
    await _reply(update, t(lng, "buy_pick"), reply_markup=packs_keyboard(lng, wallet.packs))


async def on_open_buy(update: Update, context: Context, press: cd.OpenBuy) -> None:
    """⭐ Buy under a refusal: the packs, as /buy shows them."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    wallet, lng, who = _wallet(context), lang(update, context), who_of(update)
    if wallet is None:
        return
    # As a reply to the request that was refused: in a group, its buttons are then the
    # asker's to press (the gate's rule for buttons under a reply).
    refusal = query.message if isinstance(query.message, Message) else None
    asked = refusal.reply_to_message if refusal is not None else None
    await context.bot.send_message(
        who.chat_id,
        t(lng, "buy_pick"),
        message_thread_id=who.thread_id or None,
        reply_to_message_id=asked.message_id if asked is not None else None,
        allow_sending_without_reply=True,
        reply_markup=packs_keyboard(lng, wallet.packs),
    )


async def on_buy_pack(update: Update, context: Context, press: cd.BuyPack) -> None:
    """A pack's invoice in Stars: no provider token, one price, the pack in the payload."""
    query = update.callback_query
    assert query is not None
    wallet, lng, who = _wallet(context), lang(update, context), who_of(update)
    if wallet is None or press.stars not in wallet.packs:
        await query.answer(t(lng, "buy_pack_gone"), show_alert=True)
        return
    await query.answer()
    await context.bot.send_invoice(
        who.chat_id,
        title=t(lng, "invoice_title", stars=press.stars)[:32],
        description=t(lng, "invoice_description", stars=press.stars)[:255],
        payload=wallet.payload_for(press.stars, who.chat_id),
        currency=CURRENCY,
        prices=[LabeledPrice(t(lng, "invoice_label", stars=press.stars), press.stars)],
        # Stars need no provider; PTB's defaults would mangle an empty token, so none is sent
        provider_token=None,
        message_thread_id=who.thread_id or None,
    )


async def on_pre_checkout(update: Update, context: Context) -> None:
    """Yes or no within Telegram's 10 seconds: the pack must still be sold and the payer
    allowed. Every query gets its answer, also when deciding fails (then no: nothing paid)."""
    query = update.pre_checkout_query
    assert query is not None
    lng = lang_of(query.from_user.language_code)
    problem: str | None = "paid_mode_off"
    try:
        wallet = _wallet(context)
        if wallet is not None:
            problem = wallet.checkout_problem(
                query.invoice_payload, query.currency, query.total_amount
            )
            parsed = wallet.parse_payload(query.invoice_payload)
            if problem is None and parsed is not None:
                allowed = await services(context).access.allowed(query.from_user.id, parsed[1])
                problem = None if allowed else "buy_not_allowed"
    except Exception:
        log.exception("pre-checkout check failed; the payment is refused")
        problem = "err_internal"
    if problem is None:
        await query.answer(ok=True)
    else:
        await query.answer(ok=False, error_message=t(lng, problem))


async def on_successful_payment(update: Update, context: Context) -> None:
    """Telegram took the Stars: credit the payer, once per charge id (a redelivered update
    is recognised and says nothing twice)."""
    message = update.effective_message
    assert message is not None and message.successful_payment is not None
    payment, user = message.successful_payment, message.from_user
    wallet = _wallet(context)
    if user is None:
        return
    if wallet is None:
        log.warning(
            "a payment %s arrived with paid mode off: not credited",
            payment.telegram_payment_charge_id,
        )
        return
    added = await wallet.credit(
        user.id, payment.telegram_payment_charge_id, payment.total_amount, message.chat_id
    )
    if added:
        balance = await wallet.balance(user.id)
        lng = lang(update, context)
        text = t(lng, "buy_thanks", stars=payment.total_amount, balance=balance.stars)
        # not as a reply: a payment is a service message, no reply target
        await context.bot.send_message(
            message.chat_id, text, message_thread_id=who_of(update).thread_id or None
        )


async def cmd_balance(update: Update, context: Context) -> None:
    """Credits, the free images left today, and the latest purchases, charges and refunds."""
    wallet = await _paid_mode(update, context)
    if wallet is None:
        return
    lng, who = lang(update, context), who_of(update)
    view = await wallet.balance(who.user_id)
    lines = [t(lng, "balance_stars", stars=view.stars)]
    if view.free_per_day:
        lines.append(
            t(
                lng,
                "balance_free",
                left=view.free_left,
                limit=view.free_per_day,
                reset=view.resets_at,
            )
        )
    if who.chat_type != ChatType.PRIVATE:
        sponsor = await wallet.sponsor(who.chat_id)
        if sponsor is not None:
            lines.append(t(lng, "balance_sponsored", id=sponsor.sponsor_id))
    if view.recent:
        lines.append(t(lng, "balance_recent"))
        for entry in view.recent:
            lines.append(
                t(
                    lng,
                    f"ledger_{entry.kind}",
                    amount=abs(entry.amount),
                    when=entry.created_at.strftime("%m-%d %H:%M"),
                    job=entry.job_id or "",
                    charge=entry.charge_id or "",
                )
            )
    await _reply(update, "\n".join(lines))


async def cmd_sponsor(update: Update, context: Context) -> None:
    """In a group, its owner: `/sponsor [Stars a day]` pays for everyone's images from the
    owner's balance; `/sponsor off` ends it."""
    wallet = await _paid_mode(update, context)
    if wallet is None:
        return
    lng, who, args = lang(update, context), who_of(update), list(context.args or [])
    if who.chat_type == ChatType.PRIVATE:
        await _reply(update, t(lng, "sponsor_groups_only"))
        return
    if not await _is_owner(context, who.chat_id, who.user_id):
        await _reply(update, t(lng, "sponsor_owner_only"))
        return
    if args and args[0].lower() == "off":
        await wallet.set_sponsor(who.chat_id, None)
        await _reply(update, t(lng, "sponsor_off"))
        return
    if args and not args[0].isdigit():
        await _reply(update, t(lng, "sponsor_usage"))
        return
    limit = min(int(args[0]), 10_000_000) if args else 0
    await wallet.set_sponsor(who.chat_id, who.user_id, limit)
    await _reply(
        update,
        t(lng, "sponsor_on", limit=limit or t(lng, "unlimited")),
    )


async def _is_owner(context: Context, chat_id: int, user_id: int) -> bool:
    try:
        member = await context.bot.get_chat_member(chat_id, user_id)
    except TelegramError:
        return False  # fail closed: who cannot be checked does not sponsor
    return member.status == ChatMemberStatus.OWNER


async def cmd_refund(update: Update, context: Context) -> None:
    """Admins: `/refund <charge id> [force]` gives a purchase's Stars back
    (refundStarPayment) and takes its unspent part off the balance; a purchase already
    (partly) spent is refunded only with `force`."""
    wallet = await _paid_mode(update, context)
    if wallet is None:
        return
    lng, args = lang(update, context), list(context.args or [])
    user = update.effective_user
    if user is None or not services(context).access.is_admin(user.id):
        await _reply(update, t(lng, "admin_only"))
        return
    if not args:
        await _reply(update, t(lng, "refund_usage"))
        return
    charge_id, force = args[0], len(args) > 1 and args[1].lower() == "force"
    plan = await wallet.refund_plan(charge_id)
    if plan is None:
        await _reply(update, t(lng, "refund_unknown"))
        return
    if plan.already_refunded:
        await _reply(update, t(lng, "refund_already"))
        return
    if plan.spent and not force:
        await _reply(
            update,
            t(lng, "refund_spent", spent=plan.spent, stars=plan.purchase.amount, charge=charge_id),
        )
        return
    try:
        await context.bot.refund_star_payment(plan.purchase.account_id, charge_id)
    except BadRequest as exc:
        if ALREADY_REFUNDED not in exc.message.upper():
            await _reply(update, t(lng, "refund_failed", reason=exc.message))
            return
        # refunded by Telegram before (e.g. the bot stopped before it recorded that): record it
    done = await wallet.record_refund(charge_id)
    assert done is not None
    await _reply(
        update,
        t(
            lng,
            "refund_done",
            stars=done.purchase.amount,
            removed=done.unspent,
            id=done.purchase.account_id,
        ),
    )


async def reconcile_payments(app: Application) -> None:
    """At start: payments Telegram has that the ledger lacks (the bot stopped between
    receiving one and crediting it, and its update was already confirmed) are credited,
    and refunds it made that the ledger lacks are recorded. Never stops the start."""
    svc: Services | None = app.bot_data.get(SERVICES_KEY)
    wallet = svc.wallet if svc is not None else None
    if wallet is None:
        return
    try:
        payments: dict[str, tuple[int, int, str]] = {}
        refunds: set[str] = set()
        offset = 0
        for _ in range(1000):
            page = await app.bot.get_star_transactions(offset=offset, limit=STAR_PAGE)
            for tx in page.transactions:
                source = tx.source
                user = getattr(source, "user", None)
                payload = getattr(source, "invoice_payload", None) or ""
                if user is not None and wallet.parse_payload(payload) is not None:
                    payments[tx.id] = (user.id, tx.amount, payload)
                elif tx.receiver is not None and getattr(tx.receiver, "user", None) is not None:
                    refunds.add(tx.id)
            offset += len(page.transactions)
            if len(page.transactions) < STAR_PAGE:
                break
        known = await wallet.known_charges(list(payments))
        for charge_id, (user_id, amount, payload) in payments.items():
            parsed = wallet.parse_payload(payload)
            if charge_id not in known:
                chat = parsed[1] if parsed else None
                await wallet.credit(user_id, charge_id, amount, chat)
                log.info("payment %s credited at start (it was not in the ledger)", charge_id)
            if charge_id in refunds:
                await wallet.record_refund(charge_id)
    except TelegramError as exc:
        log.warning("could not compare payments with Telegram's: %s", exc.message)
