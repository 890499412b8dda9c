"""Queries of the Stars ledger (paid mode): balances as sums of rows, purchases keyed by
Telegram's charge id, a job's reservation settled once, and group sponsors.

Rows are only ever inserted: a balance is the sum of an account's rows. The unique
constraints do the "exactly once": a second purchase row for one charge id, or a second
reserve / charge / release row for one job, is not written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select

from bot.storage.models import ChatSponsor, Image, LedgerEntry, LedgerKind, utcnow
from bot.storage.queries import Queries, table_of
from bot.storage.rows import LedgerRow, SponsorRow, StarsFlow, from_row

_LEDGER = table_of(LedgerEntry)
_SPONSORS = table_of(ChatSponsor)
_IMAGES = table_of(Image)
_ROW_COLUMNS = tuple(_LEDGER.c[name] for name in LedgerRow.__dataclass_fields__)
_SETTLES = _LEDGER.alias("settles")
_BALANCE = select(func.coalesce(func.sum(_LEDGER.c.amount), 0)).where(
    _LEDGER.c.account_id == bindparam("_account")
)
_OF_JOB = select(*_ROW_COLUMNS).where(_LEDGER.c.job_id == bindparam("_job"))
_PURCHASE = select(*_ROW_COLUMNS).where(
    _LEDGER.c.kind == LedgerKind.PURCHASE, _LEDGER.c.charge_id == bindparam("_charge")
)
_REFUND = select(_LEDGER.c.id).where(
    _LEDGER.c.kind == LedgerKind.REFUND, _LEDGER.c.charge_id == bindparam("_charge")
)
_JOB_IMAGES = select(func.count(_IMAGES.c.id)).where(_IMAGES.c.job_id == bindparam("_job"))
_OPEN = (
    select(*_ROW_COLUMNS)
    .where(
        _LEDGER.c.kind == LedgerKind.RESERVE,
        ~select(_SETTLES.c.id)
        .where(_SETTLES.c.kind == LedgerKind.RELEASE, _SETTLES.c.job_id == _LEDGER.c.job_id)
        .exists(),
    )
    .order_by(_LEDGER.c.id)
)
_SETTLED_KINDS = (LedgerKind.RESERVE, LedgerKind.CHARGE, LedgerKind.RELEASE)


class LedgerQueries(Queries):
    async def balance(self, account_id: int) -> int:
        """The sum of the account's rows: credits bought, less what is held, spent, refunded."""
        return int((await self.core(_BALANCE, {"_account": account_id})).scalar_one())

    async def add_entry(
        self, kind: LedgerKind, account_id: int, amount: int, **values: Any
    ) -> bool:
        """One ledger row; False (nothing written) when its charge id or job already has a
        row of this kind."""
        row = {
            "kind": kind.value,
            "account_id": account_id,
            "amount": amount,
            "job_id": None,
            "chat_id": None,
            "charge_id": None,
            "images": 0,
            "free_images": 0,
            "unit_price": 0,
            "created_at": utcnow(),
            **values,
        }
        result = await self._insert_ignore(_LEDGER, **row)
        return bool(result.rowcount)

    async def entries_of_job(self, job_id: int) -> list[LedgerRow]:
        return [from_row(LedgerRow, r) for r in await self.core(_OF_JOB, {"_job": job_id})]

    async def open_reservations(self) -> list[LedgerRow]:
        """Reservations not yet settled (no release row for their job), oldest first."""
        return [from_row(LedgerRow, r) for r in await self.core(_OPEN)]

    async def purchase(self, charge_id: str) -> LedgerRow | None:
        row = (await self.core(_PURCHASE, {"_charge": charge_id})).first()
        return from_row(LedgerRow, row) if row is not None else None

    async def refunded(self, charge_id: str) -> bool:
        return (await self.core(_REFUND, {"_charge": charge_id})).first() is not None

    async def images_of_job(self, job_id: int) -> int:
        return int((await self.core(_JOB_IMAGES, {"_job": job_id})).scalar_one())

    async def recent_entries(
        self, account_id: int, kinds: tuple[str, ...], limit: int
    ) -> list[LedgerRow]:
        stmt = (
            select(*_ROW_COLUMNS)
            .where(_LEDGER.c.account_id == account_id, _LEDGER.c.kind.in_(kinds))
            .order_by(_LEDGER.c.id.desc())
            .limit(limit)
        )
        return [from_row(LedgerRow, r) for r in await self.core(stmt)]

    async def spent_in_chat(self, account_id: int, chat_id: int, since: datetime) -> int:
        """Stars the account holds or spent on this chat's jobs since `since`."""
        stmt = select(func.coalesce(func.sum(_LEDGER.c.amount), 0)).where(
            _LEDGER.c.account_id == account_id,
            _LEDGER.c.chat_id == chat_id,
            _LEDGER.c.created_at >= since,
            _LEDGER.c.kind.in_([k.value for k in _SETTLED_KINDS]),
        )
        return -int((await self.core(stmt)).scalar_one())

    async def stars_flow(self, since: datetime) -> StarsFlow:
        """Stars bought, refunded and charged for images since `since`, over all accounts."""

        def total(kind: LedgerKind) -> Any:
            return (
                select(func.coalesce(func.sum(_LEDGER.c.amount), 0))
                .where(_LEDGER.c.kind == kind, _LEDGER.c.created_at >= since)
                .scalar_subquery()
            )

        stmt = select(
            total(LedgerKind.PURCHASE), total(LedgerKind.REFUND), total(LedgerKind.CHARGE)
        )
        bought, refunded, charged = (await self.core(stmt)).one()
        return StarsFlow(int(bought), -int(refunded), -int(charged))

    # -- sponsors ----------------------------------------------------------------------------
    async def sponsor_of(self, chat_id: int) -> SponsorRow | None:
        stmt = select(_SPONSORS.c.chat_id, _SPONSORS.c.sponsor_id, _SPONSORS.c.daily_limit).where(
            _SPONSORS.c.chat_id == chat_id
        )
        row = (await self.core(stmt)).first()
        return from_row(SponsorRow, row) if row is not None else None

    async def set_sponsor(self, chat_id: int, sponsor_id: int | None, daily_limit: int) -> None:
        """The chat's sponsor and daily limit; None: the chat has none."""
        if sponsor_id is None:
            await self.core(delete(_SPONSORS).where(_SPONSORS.c.chat_id == chat_id))
            return
        row = {
            "chat_id": chat_id,
            "sponsor_id": sponsor_id,
            "daily_limit": daily_limit,
            "updated_at": utcnow(),
        }
        await self.core(self._upsert(_SPONSORS, ["chat_id"], row), row)
