"""Queries of one person's data as a whole: what /export packs and what /forget removes."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, delete, or_, select, update

from bot.storage.models import (
    ChatPrefs,
    ChatState,
    ChatStyle,
    Image,
    ImageMessage,
    Job,
    JobInput,
    JobStatus,
    LedgerEntry,
    PendingStyle,
    User,
)
from bot.storage.queries import Queries, table_of
from bot.storage.rows import ExportImage, ExportJob, Forgotten, from_row

_JOBS = table_of(Job)
_IMAGES = table_of(Image)
_INPUTS = table_of(JobInput)
_MESSAGES = table_of(ImageMessage)
_STATES = table_of(ChatState)
_PREFS = table_of(ChatPrefs)
_LEDGER = table_of(LedgerEntry)
_USERS = table_of(User)
_STYLES = table_of(ChatStyle)  # the private chat's own styles are the person's words too
_PENDING = table_of(PendingStyle)
_EXPORT_JOB_COLUMNS = tuple(_JOBS.c[name] for name in ExportJob.__dataclass_fields__)
_EXPORT_IMAGE_COLUMNS = tuple(_IMAGES.c[name] for name in ExportImage.__dataclass_fields__)


def _jobs_of(user_id: int) -> ColumnElement[bool]:
    return _JOBS.c.user_id == user_id


def _images_of(user_id: int) -> ColumnElement[bool]:
    """A person's images: those they sent, and the results of their jobs (whoever stored them)."""
    their_jobs = select(_JOBS.c.id).where(_jobs_of(user_id))
    return or_(_IMAGES.c.user_id == user_id, _IMAGES.c.job_id.in_(their_jobs))


class PersonalQueries(Queries):
    async def jobs_for_export(self, user_id: int) -> list[ExportJob]:
        stmt = select(*_EXPORT_JOB_COLUMNS).where(_jobs_of(user_id)).order_by(_JOBS.c.id)
        return [from_row(ExportJob, r) for r in await self.core(stmt)]

    async def images_for_export(self, user_id: int) -> list[ExportImage]:
        stmt = select(*_EXPORT_IMAGE_COLUMNS).where(_images_of(user_id)).order_by(_IMAGES.c.id)
        return [from_row(ExportImage, r) for r in await self.core(stmt)]

    async def running_jobs_of_user(self, user_id: int) -> int:
        stmt = select(_JOBS.c.id).where(_jobs_of(user_id), _JOBS.c.status == JobStatus.RUNNING)
        return len((await self.core(stmt)).all())

    async def forget_user(self, user_id: int, private_chat_id: int) -> Forgotten:
        """Delete a person's jobs, images, their private chat's settings and state, and their
        user row. Rows of other people that pointed at those images let go of them; ledger
        rows (money moved) stay, without their job."""
        job_ids = list((await self.core(select(_JOBS.c.id).where(_jobs_of(user_id)))).scalars())
        image_rows = (
            await self.core(select(_IMAGES.c.id, _IMAGES.c.sha256).where(_images_of(user_id)))
        ).all()
        image_ids = [r.id for r in image_rows]
        if image_ids:
            await self.core(delete(_INPUTS).where(_INPUTS.c.image_id.in_(image_ids)))
            await self.core(delete(_MESSAGES).where(_MESSAGES.c.image_id.in_(image_ids)))
            await self.core(
                update(_STATES)
                .where(_STATES.c.current_image_id.in_(image_ids))
                .values(current_image_id=None)
            )
        if job_ids:
            await self.core(delete(_INPUTS).where(_INPUTS.c.job_id.in_(job_ids)))
            await self.core(
                update(_LEDGER).where(_LEDGER.c.job_id.in_(job_ids)).values(job_id=None)
            )
        if image_ids:
            await self.core(delete(_IMAGES).where(_IMAGES.c.id.in_(image_ids)))
        if job_ids:
            await self.core(delete(_JOBS).where(_JOBS.c.id.in_(job_ids)))
        await self.core(delete(_STATES).where(_STATES.c.chat_id == private_chat_id))
        await self.core(delete(_PREFS).where(_PREFS.c.chat_id == private_chat_id))
        await self.core(delete(_STYLES).where(_STYLES.c.chat_id == private_chat_id))
        await self.core(delete(_PENDING).where(_PENDING.c.chat_id == private_chat_id))
        await self.core(delete(_USERS).where(_USERS.c.id == user_id))
        return Forgotten(len(job_ids), len(image_ids), frozenset(r.sha256 for r in image_rows))

    async def blobs_in_use(self, shas: Iterable[str]) -> set[str]:
        """Those of these blobs that some image row still names."""
        wanted = sorted(set(shas))
        if not wanted:
            return set()
        stmt = select(_IMAGES.c.sha256).where(_IMAGES.c.sha256.in_(wanted)).distinct()
        return set((await self.core(stmt)).scalars())
