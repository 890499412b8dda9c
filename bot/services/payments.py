"""Paid mode (PAID_MODE=stars): credits bought with Telegram Stars, reserved by a job before
its upstream call and settled once when it ends.

Every movement is a ledger row (bot/storage/ledger.py) and a balance is their sum:

- purchase (+pack): a successful payment, keyed by Telegram's charge id, so a redelivered
  update (or the start-up reconciliation with getStarTransactions) never credits it twice;
- reserve (-price): written with the job's row, in the same write transaction as the
  balance check, so two jobs racing for the last credits cannot both pass;
- release (+reserved) and charge (-price of the images delivered): written together when the
  job ends -- delivered, failed, blocked, without an image, or settled after a crash;
- refund (-unspent part): an admin's /refund of a purchase.

The day's first FREE_IMAGES_PER_DAY images of a person cost nothing (the quota's count of
images made and running, bot/services/quotas.py). In a sponsored group the sponsor pays,
within the sponsorship's daily limit and balance; otherwise the person who asks pays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta

from bot.services.errors import NotEnoughStarsError
from bot.services.quotas import day_start
from bot.services.types import JobOptions, Who
from bot.storage.database import Database
from bot.storage.models import JobStatus, LedgerKind, SubjectKind
from bot.storage.repositories import Repo
from bot.storage.rows import LedgerRow, SponsorRow, StarsFlow

log = logging.getLogger(__name__)

CURRENCY = "XTR"  # Telegram Stars
PAYLOAD_PREFIX = "pack:"
#: Ledger kinds a person sees in /balance (reservations and releases are the bot's own).
SHOWN_KINDS = (LedgerKind.PURCHASE.value, LedgerKind.CHARGE.value, LedgerKind.REFUND.value)

StarPrice = Callable[[str, str | None], int]  # (model, size) -> Stars per image


@dataclass(frozen=True)
class BalanceView:
    stars: int
    free_left: int
    free_per_day: int
    resets_at: str
    recent: list[LedgerRow]


@dataclass(frozen=True)
class RefundPlan:
    """What refunding one purchase would do: `unspent` Stars leave the balance."""

    purchase: LedgerRow
    unspent: int
    already_refunded: bool

    @property
    def spent(self) -> int:
        return self.purchase.amount - self.unspent


class Wallet:
    def __init__(
        self,
        database: Database,
        *,
        packs: tuple[int, ...],
        free_per_day: int,
        price: StarPrice,
        exempt: frozenset[int] = frozenset(),
        shown_above: int = 0,
    ) -> None:
        self._db = database
        self.packs = packs
        self.free_per_day = free_per_day
        self._price = price
        self._exempt = exempt
        self._shown_above = shown_above

    # -- prices ------------------------------------------------------------------------------
    def price(self, options: JobOptions) -> int:
        """Stars a job of these options costs before any free allowance."""
        return self._price(options.model, options.image_size) * options.n

    def price_to_show(self, options: JobOptions) -> int | None:
        """The price a button names, when it is above STAR_PRICE_SHOWN_ABOVE."""
        price = self.price(options)
        return price if price > self._shown_above else None

    # -- buying ------------------------------------------------------------------------------
    def payload_for(self, pack: int, chat_id: int) -> str:
        """The invoice's payload: the pack and the chat it was bought in (1-128 bytes)."""
        return f"{PAYLOAD_PREFIX}{pack}:{chat_id}"

    def parse_payload(self, payload: str) -> tuple[int, int] | None:
        """(pack, chat id) of one of our invoices' payloads; None for anything else."""
        if not payload.startswith(PAYLOAD_PREFIX):
            return None
        pack, _, chat = payload.removeprefix(PAYLOAD_PREFIX).partition(":")
        if not pack.isdigit() or not chat.lstrip("-").isdigit():
            return None
        return int(pack), int(chat)

    def checkout_problem(self, payload: str, currency: str, total: int) -> str | None:
        """Why a pre-checkout must be refused (a catalog key), or None to accept it."""
        parsed = self.parse_payload(payload)
        if parsed is None or parsed[0] not in self.packs or currency != CURRENCY:
            return "buy_pack_gone"
        if total != parsed[0]:
            return "buy_pack_gone"
        return None

    async def credit(
        self, user_id: int, charge_id: str, amount: int, chat_id: int | None = None
    ) -> bool:
        """A successful payment credits its payer once; False when it was credited before."""
        async with self._db.write() as repo:
            added = await repo.add_entry(
                LedgerKind.PURCHASE, user_id, amount, charge_id=charge_id, chat_id=chat_id
            )
        await self._db.to_disk()  # a purchase must survive a power loss once acknowledged
        if added:
            log.info("credited %s Stars to user %s", amount, user_id)
        return added

    async def balance(self, user_id: int) -> BalanceView:
        async with self._db.read() as repo:
            stars = await repo.balance(user_id)
            used = await repo.images_used(SubjectKind.USER, user_id, day_start())
            recent = await repo.recent_entries(user_id, SHOWN_KINDS, 5)
        resets = (day_start() + timedelta(days=1)).strftime("%H:%M UTC")
        free_left = max(0, self.free_per_day - used)
        return BalanceView(stars, free_left, self.free_per_day, resets, recent)

    # -- charging ----------------------------------------------------------------------------
    async def reserve(self, repo: Repo, job_id: int, who: Who, options: JobOptions) -> None:
        """Hold the job's price (inside the write that opens the job, which its caller rolls
        back when this raises NotEnoughStarsError)."""
        if who.user_id in self._exempt:
            return
        unit = self._price(options.model, options.image_size)
        sponsor = None if who.chat_type == "private" else await repo.sponsor_of(who.chat_id)
        # other replicas' reservations of these accounts wait until this write commits
        accounts = {who.user_id} | ({sponsor.sponsor_id} if sponsor is not None else set())
        await repo.lock_subjects(*(("account", a) for a in accounts))
        used = await repo.images_used(SubjectKind.USER, who.user_id, day_start())
        free = min(
            options.n, max(0, self.free_per_day - (used - options.n))
        )  # used counts this job
        paid = options.n - free
        if paid == 0:
            return
        amount = unit * paid
        payer = await self._payer(repo, who, amount, sponsor)
        have = await repo.balance(payer)
        if have < amount:
            raise NotEnoughStarsError(need=amount, have=max(0, have))
        await repo.add_entry(
            LedgerKind.RESERVE,
            payer,
            -amount,
            job_id=job_id,
            chat_id=who.chat_id,
            images=paid,
            free_images=free,
            unit_price=unit,
        )

    async def _payer(self, repo: Repo, who: Who, amount: int, sponsor: SponsorRow | None) -> int:
        """The sponsor of a group while the sponsorship covers the job, else the asker."""
        if sponsor is None or sponsor.sponsor_id == who.user_id:
            return who.user_id
        if sponsor.daily_limit:
            spent = await repo.spent_in_chat(sponsor.sponsor_id, who.chat_id, day_start())
            if spent + amount > sponsor.daily_limit:
                return who.user_id
        if await repo.balance(sponsor.sponsor_id) < amount:
            return who.user_id
        return sponsor.sponsor_id

    async def settle(self, repo: Repo, job_id: int, *, delivered: bool) -> None:
        """The job's reservation ends once: released whole, and the images delivered (past
        the free ones) charged. A job with no reservation, or settled already, is left."""
        entries = await repo.entries_of_job(job_id)
        held = next((e for e in entries if e.kind == LedgerKind.RESERVE), None)
        if held is None or any(e.kind == LedgerKind.RELEASE for e in entries):
            return
        made = await repo.images_of_job(job_id) if delivered else 0
        paid = min(held.images, max(0, made - held.free_images))
        where = {"job_id": job_id, "chat_id": held.chat_id}
        await repo.add_entry(LedgerKind.RELEASE, held.account_id, -held.amount, **where)
        if paid:
            charge = paid * held.unit_price
            await repo.add_entry(
                LedgerKind.CHARGE,
                held.account_id,
                -charge,
                images=paid,
                unit_price=held.unit_price,
                **where,
            )

    async def release(self, job_id: int) -> None:
        """Nothing reached the user: the whole reservation goes back."""
        async with self._db.write() as repo:
            await self.settle(repo, job_id, delivered=False)

    async def settle_leftovers(self, repo: Repo, job_ids: Collection[int] | None = None) -> None:
        """After a crash: every reservation (of these jobs, when given: those a dead replica
        left) whose job is over is settled (a job still running runs again; a result stored
        but not sent is charged when it is delivered)."""
        for held in await repo.open_reservations():
            assert held.job_id is not None
            if job_ids is not None and held.job_id not in job_ids:
                continue
            job = await repo.job(held.job_id)
            if job is None or job.status == JobStatus.RUNNING:
                continue
            if job.status != JobStatus.FAILED and job.delivered_at is None:
                continue
            await self.settle(repo, held.job_id, delivered=job.delivered_at is not None)

    # -- refunds -----------------------------------------------------------------------------
    async def refund_plan(self, charge_id: str) -> RefundPlan | None:
        async with self._db.read() as repo:
            purchase = await repo.purchase(charge_id)
            if purchase is None:
                return None
            balance = await repo.balance(purchase.account_id)
            refunded = await repo.refunded(charge_id)
        return RefundPlan(purchase, min(purchase.amount, max(0, balance)), refunded)

    async def record_refund(self, charge_id: str) -> RefundPlan | None:
        """Telegram gave the Stars back: the purchase's unspent part leaves the balance (once;
        a second call, e.g. after CHARGE_ALREADY_REFUNDED, writes nothing)."""
        async with self._db.write() as repo:
            purchase = await repo.purchase(charge_id)
            if purchase is None:
                return None
            await repo.lock_subjects(("account", purchase.account_id))  # vs. a reservation
            balance = await repo.balance(purchase.account_id)
            unspent = min(purchase.amount, max(0, balance))
            added = await repo.add_entry(
                LedgerKind.REFUND,
                purchase.account_id,
                -unspent,
                charge_id=charge_id,
                chat_id=purchase.chat_id,
            )
        await self._db.to_disk()
        return RefundPlan(purchase, unspent, not added)

    # -- groups and records ------------------------------------------------------------------
    async def sponsor(self, chat_id: int) -> SponsorRow | None:
        async with self._db.read() as repo:
            return await repo.sponsor_of(chat_id)

    async def set_sponsor(self, chat_id: int, sponsor_id: int | None, daily_limit: int = 0) -> None:
        async with self._db.write() as repo:
            await repo.set_sponsor(chat_id, sponsor_id, daily_limit)

    async def flow(self, days: int) -> StarsFlow:
        async with self._db.read() as repo:
            return await repo.stars_flow(day_start() - timedelta(days=days - 1))

    async def known_charges(self, charge_ids: list[str]) -> set[str]:
        """Which of these payments the ledger has already credited."""
        async with self._db.read() as repo:
            return {c for c in charge_ids if await repo.purchase(c) is not None}
