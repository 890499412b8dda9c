"""Queries over the models. Repositories never commit: the service owning the unit of work does."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Executable,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.services.types import StoredImage
from bot.storage.models import (
    Chat,
    ChatPrefs,
    ChatState,
    Image,
    ImageMessage,
    Job,
    JobInput,
    JobStatus,
    SubjectRule,
    User,
    utcnow,
)


@functools.cache
def _insert_ignore_statement(dialect: str, table: Table) -> Executable:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing()


@functools.cache
def _upsert_statement(
    dialect: str, table: Table, keys: tuple[str, ...], columns: tuple[str, ...]
) -> Executable:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in columns}
    )


def _by_id(model: type[Any]) -> Update:
    """Core UPDATE of the row whose id is the parameter `_id`; SET from the other parameters.

    On the table, not the class: the ORM's bulk-update path cost more than the statement."""
    table: Table = model.__table__
    return update(table).where(table.c.id == bindparam("_id"))


def table_of(model: type[Any]) -> Table:
    """A model's Table, typed as one."""
    table: Table = model.__table__
    return table


def _returning_id(model: type[Any]) -> Insert:
    """Core INSERT of one row, giving back its id: no unit of work, no identity map."""
    table: Table = model.__table__
    return insert(table).returning(table.c.id)


_UPDATE_JOB = _by_id(Job)
_INSERT_JOB = _returning_id(Job)
_INSERT_IMAGE = _returning_id(Image)
_INSERT_JOB_INPUT = insert(table_of(JobInput))
_IMAGES = table_of(Image)
#: The columns of an image that `StoredImage` carries, in its field order.
IMAGE_COLUMNS = (
    _IMAGES.c.id,
    _IMAGES.c.sha256,
    _IMAGES.c.mime,
    _IMAGES.c.width,
    _IMAGES.c.height,
    _IMAGES.c.size_bytes,
    _IMAGES.c.tg_file_id,
    _IMAGES.c.job_id,
)
_JOB_OWNER: Select[tuple[int]] = select(table_of(Job).c.user_id).where(
    table_of(Job).c.id == bindparam("_id")
)
_FILE_ID = Image.__table__.c.tg_file_id
_SET_FILE_ID = (
    _by_id(Image)
    .where(or_(_FILE_ID.is_(None), _FILE_ID == ""))
    .values(tg_file_id=bindparam("_file_id"))
)


class Repo:
    """All queries of one unit of work, bound to its session."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session
        self._conn: AsyncConnection | None = None

    async def core(self, stmt: Executable, params: Any = None) -> Any:
        """Run a Core statement on the session's connection (the same transaction), past the
        ORM's execute path: for statements on tables, whose rows are never ORM objects."""
        if self._conn is None:
            self._conn = await self.s.connection()
        return await self._conn.execute(stmt, params)

    # -- users and chats -------------------------------------------------------------------
    # The ON CONFLICT statements are built once per table and shape (values go as parameters):
    # building and keying a new one for every execution cost more than running it.
    def _dialect(self) -> str:
        return self.s.get_bind().dialect.name

    async def _insert_ignore(self, model: type[Any], **values: Any) -> None:
        """INSERT … ON CONFLICT DO NOTHING: concurrent first requests of a chat don't collide."""
        await self.core(_insert_ignore_statement(self._dialect(), model.__table__), values)

    async def _upsert(
        self, model: type[Any], keys: Sequence[str], keep: Sequence[str] = (), **values: Any
    ) -> None:
        """INSERT, or on a conflict of `keys` UPDATE every other given column but `keep`."""
        changed = tuple(k for k in values if k not in keys and k not in keep)
        stmt = _upsert_statement(self._dialect(), model.__table__, tuple(keys), changed)
        await self.core(stmt, values)

    async def upsert_user(
        self, user_id: int, first_name: str, username: str | None, language_code: str | None
    ) -> None:
        """One statement: the user's row with these names, seen now."""
        now = utcnow()
        await self._upsert(
            User,
            ["id"],
            keep=["created_at"],
            id=user_id,
            first_name=first_name[:256],
            username=username,
            language_code=language_code,
            created_at=now,
            last_seen_at=now,
        )

    async def upsert_chat(self, chat_id: int, chat_type: str, title: str | None) -> None:
        """One statement: the chat's row with this type and title."""
        await self._upsert(
            Chat,
            ["id"],
            keep=["created_at"],
            id=chat_id,
            type=str(chat_type),
            title=title[:256] if title else None,
            created_at=utcnow(),
        )

    async def chat_state(self, chat_id: int, thread_id: int) -> ChatState:
        """The chat's state row (created if missing; the chat row must exist)."""
        await self._insert_ignore(
            ChatState, chat_id=chat_id, thread_id=thread_id, updated_at=utcnow()
        )
        state = await self.s.get(ChatState, (chat_id, thread_id))
        assert state is not None
        return state

    async def set_current_image(
        self, chat_id: int, thread_id: int, image_id: int | None, *, drop_album: bool = False
    ) -> None:
        """One statement: the chat's current image (and no waiting album, if `drop_album`)."""
        extra: dict[str, Any] = {"pending_album": None} if drop_album else {}
        await self._upsert(
            ChatState,
            ["chat_id", "thread_id"],
            chat_id=chat_id,
            thread_id=thread_id,
            current_image_id=image_id,
            updated_at=utcnow(),
            **extra,
        )

    async def chat_prefs(self, chat_id: int) -> ChatPrefs:
        await self._insert_ignore(
            ChatPrefs, chat_id=chat_id, refine=True, reply_mode="photo", updated_at=utcnow()
        )
        prefs = await self.s.get(ChatPrefs, chat_id)
        assert prefs is not None
        return prefs

    async def subject_rule(self, kind: str, subject_id: int) -> SubjectRule:
        """The admin rule row of a user or chat (created empty if missing)."""
        await self._insert_ignore(
            SubjectRule, kind=kind, subject_id=subject_id, updated_at=utcnow()
        )
        rule = await self.s.get(SubjectRule, (kind, subject_id))
        assert rule is not None
        return rule

    # -- images ----------------------------------------------------------------------------
    async def insert_image(self, **values: Any) -> int:
        """One INSERT of an image row (column defaults apply); its id."""
        return int((await self.core(_INSERT_IMAGE, values)).scalar_one())

    async def image(self, image_id: int) -> Image | None:
        return await self.s.get(Image, image_id)

    async def image_by_message(self, chat_id: int, message_id: int) -> Image | None:
        stmt = (
            select(Image)
            .join(ImageMessage, ImageMessage.image_id == Image.id)
            .where(ImageMessage.chat_id == chat_id, ImageMessage.message_id == message_id)
        )
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def add_image_message(self, chat_id: int, message_id: int, image_id: int) -> None:
        """Where an image was shown; the first record of a message stays."""
        await self._insert_ignore(
            ImageMessage,
            chat_id=chat_id,
            message_id=message_id,
            image_id=image_id,
            created_at=utcnow(),
        )

    async def set_file_id(self, image_id: int, file_id: str) -> None:
        """Telegram's file id of an image, unless it has one already."""
        await self.core(_SET_FILE_ID, {"_id": image_id, "_file_id": file_id})

    async def images_of_chat(self, chat_id: int, limit: int, offset: int = 0) -> Sequence[Image]:
        stmt = (
            select(Image)
            .where(Image.chat_id == chat_id)
            .order_by(Image.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return (await self.s.execute(stmt)).scalars().all()

    async def count_images_of_chat(self, chat_id: int) -> int:
        stmt = select(func.count()).select_from(Image).where(Image.chat_id == chat_id)
        return int((await self.s.execute(stmt)).scalar_one())

    async def outputs_of_job(self, job_id: int) -> Sequence[Image]:
        stmt = select(Image).where(Image.job_id == job_id).order_by(Image.id)
        return (await self.s.execute(stmt)).scalars().all()

    # -- jobs ------------------------------------------------------------------------------
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

    async def job_owner(self, job_id: int) -> int | None:
        return (await self.core(_JOB_OWNER, {"_id": job_id})).scalar_one_or_none()

    async def job(self, job_id: int) -> Job | None:
        return await self.s.get(Job, job_id)

    async def update_job(self, job_id: int, **values: Any) -> None:
        """One UPDATE of a job's columns, without loading it."""
        await self.core(_UPDATE_JOB, {"_id": job_id, **values})

    async def job_input_ids(self, job_id: int) -> list[int]:
        stmt = (
            select(JobInput.image_id).where(JobInput.job_id == job_id).order_by(JobInput.position)
        )
        return list((await self.s.execute(stmt)).scalars().all())

    async def prompts_of_jobs(self, job_ids: Sequence[int]) -> dict[int, str]:
        if not job_ids:
            return {}
        stmt = select(Job.id, Job.prompt).where(Job.id.in_(job_ids))
        return {job_id: prompt for job_id, prompt in (await self.s.execute(stmt)).all()}

    async def job_owner_in_chat(self, job_id: int, chat_id: int) -> tuple[bool, int | None]:
        """(whether the job is this chat's, who asked for it)."""
        stmt = select(Job.user_id).where(Job.id == job_id, Job.chat_id == chat_id)
        row = (await self.s.execute(stmt)).first()
        return (row is not None, row[0] if row is not None else None)

    async def image_owner_in_chat(self, image_id: int, chat_id: int) -> tuple[bool, int | None]:
        """(whether the image is this chat's, who stored it: its user, else its job's asker)."""
        stmt = (
            select(Image.user_id, Job.user_id)
            .outerjoin(Job, Job.id == Image.job_id)
            .where(Image.id == image_id, Image.chat_id == chat_id)
        )
        row = (await self.s.execute(stmt)).first()
        if row is None:
            return False, None
        return True, row[0] if row[0] is not None else row[1]

    async def stored_bytes_since(self, user_id: int, since: datetime) -> int:
        """Bytes of the images stored for this user (theirs and results they asked for)."""
        stmt = select(func.coalesce(func.sum(Image.size_bytes), 0)).where(
            Image.user_id == user_id, Image.created_at >= since
        )
        return int((await self.s.execute(stmt)).scalar_one())


# -- settling what a dead process left (bot/services/recovery.py) ---------------------------
_JOBS = table_of(Job)
_MARK_UPSTREAM = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("_id"), _JOBS.c.upstream_at.is_(None))
    .values(upstream_at=bindparam("_at"))
)
_MARK_DELIVERED = (
    update(_JOBS).where(_JOBS.c.id == bindparam("_id")).values(delivered_at=bindparam("_at"))
)
_SHOWN = (
    select(ImageMessage.id)
    .join(Image, Image.id == ImageMessage.image_id)
    .where(Image.job_id == Job.id)
    .exists()
)
#: Error code of a job a dead process left after its request went upstream.
INTERRUPTED = "interrupted"


async def mark_job_upstream(repo: Repo, job_id: int) -> None:
    """The job's request goes upstream now (kept if an earlier attempt already went)."""
    await repo.core(_MARK_UPSTREAM, {"_id": job_id, "_at": utcnow()})


async def mark_job_delivered(repo: Repo, job_id: int) -> None:
    """The job's answer (result, or the notice of its interruption) reached the chat."""
    await repo.core(_MARK_DELIVERED, {"_id": job_id, "_at": utcnow()})


async def restart_job(repo: Repo, job_id: int) -> None:
    """A job starts again (after a restart): one more attempt, started now."""
    stmt = (
        update(_JOBS)
        .where(_JOBS.c.id == job_id)
        .values(started_at=utcnow(), attempts=_JOBS.c.attempts + 1)
    )
    await repo.core(stmt)


async def running_jobs(repo: Repo) -> Sequence[Job]:
    stmt = select(Job).where(Job.status == JobStatus.RUNNING).order_by(Job.id)
    return (await repo.s.execute(stmt)).scalars().all()


async def interrupt_jobs(repo: Repo, job_ids: Sequence[int], detail: str) -> None:
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
    await repo.core(stmt)


async def unanswered_jobs(repo: Repo) -> Sequence[Job]:
    """Finished jobs whose answer never reached the chat: interruptions not yet told, and
    results stored but not sent -- neither shown anywhere (an image_messages row) nor made by
    code older than upstream_at (NULL there: such jobs never recorded their delivery)."""
    unsent = (
        Job.status.in_([JobStatus.SUCCEEDED, JobStatus.TEXT_ONLY])
        & Job.upstream_at.is_not(None)
        & ~_SHOWN
    )
    untold = (Job.status == JobStatus.FAILED) & (Job.error_code == INTERRUPTED)
    stmt = select(Job).where(Job.delivered_at.is_(None), or_(unsent, untold)).order_by(Job.id)
    return (await repo.s.execute(stmt)).scalars().all()


async def chat_and_user(repo: Repo, chat_id: int, user_id: int) -> tuple[Chat | None, User | None]:
    return await repo.s.get(Chat, chat_id), await repo.s.get(User, user_id)


# -- conversation history (bot/services/conversation.py) ------------------------------------
@dataclass(frozen=True)
class JobTurn:
    """A job's prompt and its model turn as stored (jobs.model_parts; None when it kept none)."""

    prompt: str
    model_turn: str | None


_STORED_IMAGE = select(*IMAGE_COLUMNS).where(IMAGE_COLUMNS[0] == bindparam("_id"))
_JOB_TURN = select(_JOBS.c.prompt, _JOBS.c.model_parts).where(_JOBS.c.id == bindparam("_id"))


async def stored_image(repo: Repo, image_id: int) -> StoredImage | None:
    """One image as the services pass it around, by one Core SELECT."""
    row = (await repo.core(_STORED_IMAGE, {"_id": image_id})).first()
    return StoredImage(*row) if row is not None else None


async def job_turn(repo: Repo, job_id: int) -> JobTurn | None:
    row = (await repo.core(_JOB_TURN, {"_id": job_id})).first()
    return JobTurn(row[0], row[1]) if row is not None else None
