"""Every user whose job a dead process left hears back: at start, before polling, and when
another replica dies.

A stored but unsent result is sent; a job interrupted after it went upstream gets a short
notice with a 🔁 Retry button (`regen:<job>`, the Regenerate callback); a job that never went
upstream runs again like any job. Each chat's (or topic's) leftovers hold that chat's turn in
the ChatQueue from before polling starts, so its new requests queue after them.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from telegram import Bot
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application

from bot.i18n import lang_of, t
from bot.services.recovery import Action, Leftover, RecoveryService
from bot.services.replicas import Replicas
from bot.telegram.context import SERVICES_KEY, Services
from bot.telegram.errors import tell_user
from bot.telegram.flow import deliver
from bot.telegram.keyboards import retry_keyboard
from bot.telegram.replies import VARIATIONS, ResultSender

log = logging.getLogger(__name__)

RECOVERY_KEY = "recovery"
REPLICAS_KEY = "replicas"


async def start_recovery(app: Application) -> list[asyncio.Task[None]]:
    """Claim and settle the jobs dead processes left and start answering them, one task per
    chat; returns once each task holds its chat's turn (the caller starts polling after
    this). Later deaths of other replicas are swept by bot.telegram.sharing."""
    replicas: Replicas | None = app.bot_data.get(REPLICAS_KEY)
    if replicas is None:
        return []
    claimed = await replicas.claim_left_jobs()
    return await answer_left_jobs(app, claimed, every_hold=replicas.exclusive)


async def answer_left_jobs(
    app: Application, job_ids: list[int], *, every_hold: bool = False
) -> list[asyncio.Task[None]]:
    """Settle these claimed jobs and start answering them, one task per chat; returns once
    each task holds its chat's turn."""
    service: RecoveryService | None = app.bot_data.get(RECOVERY_KEY)
    if service is None or not job_ids:
        return []
    svc: Services = app.bot_data[SERVICES_KEY]
    by_chat: dict[tuple[int, int], list[Leftover]] = {}
    for leftover in await service.settle(job_ids, every_hold=every_hold):
        by_chat.setdefault(leftover.chat_key, []).append(leftover)
    tasks = []
    for key, leftovers in by_chat.items():
        holding = asyncio.Event()
        task = asyncio.create_task(_answer_chat(app.bot, svc, service, key, leftovers, holding))
        tasks.append(task)
        waiter = asyncio.create_task(holding.wait())
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    return tasks


async def finish_recovery(tasks: list[asyncio.Task[None]]) -> None:
    """On the way out: let the answers being sent finish, like the handlers' jobs."""
    await asyncio.gather(*tasks, return_exceptions=True)


async def _answer_chat(
    bot: Bot,
    svc: Services,
    service: RecoveryService,
    key: tuple[int, int],
    leftovers: list[Leftover],
    holding: asyncio.Event,
) -> None:
    async with svc.queue.turn(key):
        holding.set()
        for leftover in leftovers:
            job = leftover.job_id
            try:
                await _answer(bot, svc, service, leftover)
            except (BadRequest, Forbidden) as exc:
                # A blocked bot or a deleted chat stays so: trying at every start never reaches it.
                log.info("job %s: its chat refused the answer (%s)", leftover.job_id, exc.message)
                await _give_up(svc, service, leftover)
            except TelegramError as exc:
                log.warning("job %s: not answered yet, next start tries again (%s)", job, exc)
            except Exception:
                log.exception("could not settle job %s", leftover.job_id)


async def _give_up(svc: Services, service: RecoveryService, leftover: Leftover) -> None:
    if leftover.action is Action.NOTIFY:
        await service.mark_told(leftover.job_id)
    elif leftover.action is Action.DELIVER:
        await svc.generation.give_up_delivery(leftover.job_id)


async def _answer(bot: Bot, svc: Services, service: RecoveryService, leftover: Leftover) -> None:
    who, reply_to = leftover.who, leftover.request_message_id
    prefs = await svc.prefs.get(who.chat_id)
    lng = prefs.language or lang_of(who.language_code)
    if leftover.action is Action.NOTIFY:
        await bot.send_message(
            who.chat_id,
            t(lng, "job_interrupted"),
            reply_to_message_id=reply_to,
            allow_sending_without_reply=True,
            message_thread_id=who.thread_id or None,
            reply_markup=retry_keyboard(leftover.job_id, lng),
        )
        await service.mark_told(leftover.job_id)
    elif leftover.action is Action.DELIVER:
        outcome = await service.outcome(leftover.job_id)
        can = svc.generation.capabilities(outcome.model)
        variations = can.supports_n
        prices = svc.generation.button_prices(outcome, VARIATIONS)
        sender = ResultSender(bot, svc.images, variations, prices, can)
        await sender.send(who, lng, outcome, reply_to, reply_mode=prefs.reply_mode)
        if not outcome.images:  # a shown image records its job's delivery with it
            await svc.generation.mark_delivered(leftover.job_id)
    elif not await svc.access.allowed(who.user_id, who.chat_id):
        # The allow lists changed across the restart: no upstream call for someone refused.
        log.info("job %s not run again: its user may no longer use the bot", leftover.job_id)
        await service.drop(leftover.job_id)
    else:
        run = partial(svc.generation.resume, leftover.job_id, who)
        try:
            await deliver(bot, svc, who, lng, reply_to, run)
        except Exception as exc:  # no update to hand to on_error: told here, the same way
            log.warning("job %s run again after a restart failed: %s", leftover.job_id, exc)
            await tell_user(bot, who, lng, reply_to, exc)
