"""Queries of jobs: opening and finishing one, its inputs, settling what a dead process left,
and the admins' statistics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, insert, or_, select, update

from bot.storage.images import IMAGE_COLUMNS
from bot.storage.models import Image, ImageMessage, Job, JobInput, JobStatus, SubjectKind, utcnow
from bot.storage.queries import Queries, by_id, returning_id, table_of
from bot.storage.rows import JobRow, JobTurn, StatRow, StoredImage, from_row

_JOBS = table_of(Job)
_INPUTS = table_of(JobInput)
_IMAGES = table_of(Image)
_MESSAGES = table_of(ImageMessage)
_JOB_COLUMNS = tuple(_JOBS.c[name] for name in JobRow.__dataclass_fields__)
#: Error code of a job a dead process left after its request went upstream.
INTERRUPTED = "interrupted"

_INSERT_JOB = returning_id(Job)
_INSERT_JOB_INPUT = insert(_INPUTS)
_UPDATE_JOB = by_id(Job)
_THIS_JOB = _JOBS.c.id == bindparam("_id")
_JOB = select(*_JOB_COLUMNS).where(_THIS_JOB)
_JOB_OWNER = select(_JOBS.c.user_id).where(_THIS_JOB)
_JOB_TURN = select(_JOBS.c.prompt, _JOBS.c.model_parts).where(_THIS_JOB)
_INPUT_IDS = (
    select(_INPUTS.c.image_id)
    .where(_INPUTS.c.job_id == bindparam("_id"))
    .order_by(_INPUTS.c.position)
)
_INPUT_IMAGES = (
    select(*IMAGE_COLUMNS)
    .join(_INPUTS, _INPUTS.c.image_id == _IMAGES.c.id)
    .where(_INPUTS.c.job_id == bindparam("_id"))
    .order_by(_INPUTS.c.position)
)
_STILL_RUNNING = _THIS_JOB & (_JOBS.c.status == JobStatus.RUNNING)
_MARK_UPSTREAM = (
    update(_JOBS)
    .where(_STILL_RUNNING)
    .values(
        upstream_at=func.coalesce(
            _JOBS.c.upstream_at, bindparam("_at", type_=_JOBS.c.upstream_at.type)
        )
    )
)
_MARK_OWN_UPSTREAM = _MARK_UPSTREAM.where(_JOBS.c.owner == bindparam("_owner"))
_MARK_DELIVERED = update(_JOBS).where(_THIS_JOB).values(delivered_at=bindparam("_at"))
_RESTART = (
    update(_JOBS)
    .where(_THIS_JOB)
    .values(started_at=bindparam("_at"), attempts=_JOBS.c.attempts + 1)
)
_RUNNING = select(*_JOB_COLUMNS).where(_JOBS.c.status == JobStatus.RUNNING).order_by(_JOBS.c.id)
_SHOWN = (
    select(_MESSAGES.c.id)
    .join(_IMAGES, _IMAGES.c.id == _MESSAGES.c.image_id)
    .where(_IMAGES.c.job_id == _JOBS.c.id)
    .exists()
)
_UNSENT = (
    _JOBS.c.status.in_([JobStatus.SUCCEEDED, JobStatus.TEXT_ONLY])
    & _JOBS.c.upstream_at.is_not(None)
    & ~_SHOWN
)
_UNTOLD = (_JOBS.c.status == JobStatus.FAILED) & (_JOBS.c.error_code == INTERRUPTED)
#: A finished job whose user never heard back (see JobQueries.unanswered_jobs).
UNANSWERED = _JOBS.c.delivered_at.is_(None) & or_(_UNSENT, _UNTOLD)
_OF_IDS = _JOBS.c.id.in_(bindparam("_ids", expanding=True))
_UNANSWERED = select(*_JOB_COLUMNS).where(UNANSWERED).order_by(_JOBS.c.id)
#: What /stats groups successful jobs by.
_STAT_KEYS: dict[str, Any] = {
    "day": func.date(_JOBS.c.created_at),
    "user": _JOBS.c.user_id,
    "chat": _JOBS.c.chat_id,
    "model": _JOBS.c.model,
}


class JobQueries(Queries):
    # -- one job ---------------------------------------------------------------------------
    async def insert_job(self, input_image_ids: Sequence[int], **values: Any) -> int:
        """The job row (column defaults apply) and its inputs in order: two statements; its id."""
        job_id = int((await self.core(_INSERT_JOB, values)).scalar_one())
        if input_image_ids:
            await self.core(
                _INSERT_JOB_INPUT,
                [
                    {"job_id": job_id, "position": position, "image_id": image_id}
                    for position, image_id in enumerate(input_image_ids)
                ],
            )
        return job_id

    async def update_job(self, job_id: int, **values: Any) -> None:
        """One UPDATE of a job's columns, without loading it."""
        await self.core(_UPDATE_JOB, {"_id": job_id, **values})

    async def job(self, job_id: int) -> JobRow | None:
        row = (await self.core(_JOB, {"_id": job_id})).first()
        return from_row(JobRow, row) if row is not None else None

    async def job_owner(self, job_id: int) -> int | None:
        return (await self.core(_JOB_OWNER, {"_id": job_id})).scalar_one_or_none()

    async def job_owner_in_chat(self, job_id: int, chat_id: int) -> tuple[bool, int | None]:
        """(whether the job is this chat's, who asked for it)."""
        stmt = _JOB_OWNER.where(_JOBS.c.chat_id == chat_id)
        row = (await self.core(stmt, {"_id": job_id})).first()
        return (row is not None, row.user_id if row is not None else None)

    async def job_turn(self, job_id: int) -> JobTurn | None:
        """A job's prompt and packed model turn."""
        row = (await self.core(_JOB_TURN, {"_id": job_id})).first()
        return from_row(JobTurn, row) if row is not None else None

    async def job_input_ids(self, job_id: int) -> list[int]:
        return list((await self.core(_INPUT_IDS, {"_id": job_id})).scalars().all())

    async def job_inputs(self, job_id: int) -> list[StoredImage]:
        """A job's input images in their order, in one read."""
        rows = await self.core(_INPUT_IMAGES, {"_id": job_id})
        return [from_row(StoredImage, r) for r in rows]

    async def mark_upstream(self, job_id: int, owner: str | None = None) -> bool:
        """The job's request goes upstream now (kept if an earlier attempt already went);
        False if the job is no longer running (as `owner`'s, when given): another replica
        took it over."""
        params = {"_id": job_id, "_at": utcnow(), "_owner": owner}
        stmt = _MARK_UPSTREAM if owner is None else _MARK_OWN_UPSTREAM
        return bool((await self.core(stmt, params)).rowcount)

    async def mark_delivered(self, job_id: int) -> None:
        """The job's answer (result, or the notice of its interruption) reached the chat."""
        await self.core(_MARK_DELIVERED, {"_id": job_id, "_at": utcnow()})

    async def restart_job(self, job_id: int) -> None:
        """A job starts again (after a restart): one more attempt, started now."""
        await self.core(_RESTART, {"_id": job_id, "_at": utcnow()})

    # -- settling what a dead process left (bot/services/recovery.py) ----------------------
    async def running_jobs(self, job_ids: Sequence[int] | None = None) -> list[JobRow]:
        """The running jobs (of these ids, when given)."""
        return await self._jobs(_RUNNING, job_ids)

    async def _jobs(self, stmt: Select[Any], job_ids: Sequence[int] | None) -> list[JobRow]:
        if job_ids is not None:
            stmt = stmt.where(_OF_IDS)
        rows = await self.core(stmt, None if job_ids is None else {"_ids": list(job_ids)})
        return [from_row(JobRow, r) for r in rows]

    async def interrupt_jobs(self, job_ids: Sequence[int], detail: str) -> None:
        """Running jobs that went upstream and whose process died: failed, to be told about."""
        if not job_ids:
            return
        stmt = (
            update(_JOBS)
            .where(_JOBS.c.id.in_(job_ids), _JOBS.c.status == JobStatus.RUNNING)
            .values(
                status=JobStatus.FAILED,
                finished_at=utcnow(),
                error_code=INTERRUPTED,
                error_detail=detail,
            )
        )
        await self.core(stmt)

    async def unanswered_jobs(self, job_ids: Sequence[int] | None = None) -> list[JobRow]:
        """Finished jobs whose answer never reached the chat: interruptions not yet told, and
        results stored but not sent -- neither shown anywhere (an image_messages row) nor made
        by code older than upstream_at (NULL there: such jobs never recorded their delivery)."""
        return await self._jobs(_UNANSWERED, job_ids)

    # -- counting --------------------------------------------------------------------------
    async def images_used(self, kind: str, subject_id: int, since: datetime) -> int:
        """Images made since `since` by the jobs of this user or chat (`kind`, a SubjectKind),
        plus those its running jobs may still make."""
        column = _JOBS.c.user_id if kind == SubjectKind.USER else _JOBS.c.chat_id
        owner: ColumnElement[bool] = column == subject_id
        made = (
            select(func.count(_IMAGES.c.id))
            .join(_JOBS, _JOBS.c.id == _IMAGES.c.job_id)
            .where(owner, _JOBS.c.created_at >= since)
            .scalar_subquery()
        )
        running = (
            select(func.coalesce(func.sum(_JOBS.c.n), 0))
            .where(owner, _JOBS.c.created_at >= since, _JOBS.c.status == JobStatus.RUNNING)
            .scalar_subquery()
        )
        made_n, running_n = (await self.core(select(made, running))).one()
        return int(made_n) + int(running_n)

    async def job_stats(self, by: str | None, since: datetime, top: int) -> list[StatRow]:
        """Successful jobs since `since` grouped by `by` (day, user, chat, model; None: all),
        the `top` biggest (days: the latest) first."""
        images = (
            select(_IMAGES.c.job_id, func.count(_IMAGES.c.id).label("n"))
            .group_by(_IMAGES.c.job_id)
            .subquery()
        )
        column = _STAT_KEYS[by] if by is not None else None
        key = column if column is not None else func.min("all")
        stmt = (
            select(
                key,
                func.count(_JOBS.c.id),
                func.coalesce(func.sum(images.c.n), 0),
                func.coalesce(func.sum(_JOBS.c.cost), 0.0),
            )
            .select_from(_JOBS)
            .outerjoin(images, images.c.job_id == _JOBS.c.id)
            .where(_JOBS.c.created_at >= since, _JOBS.c.status == JobStatus.SUCCEEDED)
        )
        if column is not None:
            order = column.desc() if by == "day" else func.count(_JOBS.c.id).desc()
            # ties by key: SQLite and PostgreSQL would otherwise cut the top at different rows
            stmt = stmt.group_by(column).order_by(order, column).limit(top)
        rows = (await self.core(stmt)).all()
        return [StatRow(str(k), int(j), int(i), float(c)) for k, j, i, c in rows if j]
