"""At start: find what a dead process (kill -9, OOM, power loss) left unfinished and settle it.

The jobs are those this replica claimed from dead ones (bot/services/replicas.py: at start,
and whenever a replica's heartbeat lapses). Each is settled by whether its request reached
the upstream (`jobs.upstream_at`):

- never went upstream: it runs again (RERUN), on the same row; nothing was billed;
- went upstream: it may have been made and billed, and a second paid call needs the user's
  consent, so it is failed as "interrupted" and its user is told, with a Retry button (NOTIFY);
- finished but its answer never reached the chat (`delivered_at` NULL): it is sent (DELIVER).

Settled jobs no longer count against a quota (only running ones do), and in paid mode the
Stars a finished job still held are settled (released unless its result was delivered). The
Telegram side lives
in bot/telegram/recovery.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.services.payments import Wallet
from bot.services.types import JobOutcome, Who
from bot.storage.database import Database
from bot.storage.models import JobStatus
from bot.storage.repositories import Repo
from bot.storage.rows import JobRow

log = logging.getLogger(__name__)

INTERRUPTED_DETAIL = "the bot stopped after the request went upstream"
#: Runs of one job before it is no longer run again by itself (a job that kills the process
#: before reaching the upstream must not kill it at every start).
MAX_ATTEMPTS = 3


class Action(StrEnum):
    RERUN = "rerun"
    NOTIFY = "notify"
    DELIVER = "deliver"


@dataclass(frozen=True)
class Leftover:
    job_id: int
    action: Action
    who: Who
    request_message_id: int | None

    @property
    def chat_key(self) -> tuple[int, int]:
        return self.who.chat_id, self.who.thread_id


class RecoveryService:
    def __init__(self, database: Database, wallet: Wallet | None = None) -> None:
        self._db = database
        self._wallet = wallet

    async def settle(self, job_ids: Sequence[int], *, every_hold: bool = False) -> list[Leftover]:
        """Of these jobs (claimed from dead replicas): fail the running ones that went
        upstream (one commit), then list every one whose user still has to hear back, oldest
        first. `every_hold`: the process is the database's only one, so every Stars hold of a
        job that is over is settled, not only these jobs'."""
        if not job_ids:
            return []
        async with self._db.write() as repo:
            running = await repo.running_jobs(job_ids)
            rerun = [j for j in running if j.upstream_at is None and j.attempts < MAX_ATTEMPTS]
            stopped = [j.id for j in running if j not in rerun]
            await repo.interrupt_jobs(stopped, INTERRUPTED_DETAIL)
            if self._wallet is not None:  # Stars held by jobs that ended with the process
                await self._wallet.settle_leftovers(repo, None if every_hold else set(job_ids))
        async with self._db.read() as repo:
            unanswered = await repo.unanswered_jobs(job_ids)
            actions = {j.id: Action.RERUN for j in rerun}
            for job in unanswered:
                failed = job.status == JobStatus.FAILED or job.id in stopped
                actions[job.id] = Action.NOTIFY if failed else Action.DELIVER
            jobs = {j.id: j for j in [*rerun, *unanswered]}
            leftovers = [
                Leftover(job.id, actions[job.id], await _who(repo, job), job.request_message_id)
                for job in sorted(jobs.values(), key=lambda j: j.id)
            ]
        if leftovers:
            log.info(
                "settling %d job(s) a stopped process left: %s",
                len(leftovers),
                ", ".join(f"{x.job_id} {x.action.value}" for x in leftovers),
            )
        return leftovers

    async def outcome(self, job_id: int) -> JobOutcome:
        """A finished job's result as the sender takes it, from the database."""
        async with self._db.read() as repo:
            job = await repo.job(job_id)
            assert job is not None
            outputs = await repo.outputs_of_job(job_id)
        return JobOutcome(
            job_id=job.id,
            model=job.model,
            prompt=job.prompt,
            seconds=(job.upstream_ms or 0) / 1000,
            images=outputs,
            text=job.model_text,
            image_size=job.image_size,
            n=job.n,
        )

    async def drop(self, job_id: int) -> None:
        """Settle a job to run again without running it (its user may no longer use the bot):
        failed as interrupted, and nobody to tell."""
        async with self._db.write() as repo:
            await repo.interrupt_jobs([job_id], INTERRUPTED_DETAIL)
            await repo.mark_delivered(job_id)
            if self._wallet is not None:
                await self._wallet.settle(repo, job_id, delivered=False)

    async def mark_told(self, job_id: int) -> None:
        """The user heard back about this job: a later start leaves it alone."""
        async with self._db.write() as repo:
            await repo.mark_delivered(job_id)


async def _who(repo: Repo, job: JobRow) -> Who:
    chat, user = await repo.chat(job.chat_id), await repo.user(job.user_id)
    return Who(
        user_id=job.user_id,
        first_name=user.first_name if user else "",
        username=user.username if user else None,
        language_code=user.language_code if user else None,
        chat_id=job.chat_id,
        chat_type=chat.type if chat else "private",
        chat_title=chat.title if chat else None,
        thread_id=job.thread_id,
    )
