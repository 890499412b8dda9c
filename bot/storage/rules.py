"""Queries of the admins' rules per user or chat: /allow and /deny, and /quota overrides."""

from __future__ import annotations

from sqlalchemy import select

from bot.storage.models import SubjectRule, utcnow
from bot.storage.queries import Queries, table_of

_RULES = table_of(SubjectRule)
_KEYS = ["kind", "subject_id"]
_ACCESS = select(_RULES.c.kind, _RULES.c.subject_id, _RULES.c.allowed).where(
    _RULES.c.allowed.is_not(None)
)
_LIMITS = select(_RULES.c.kind, _RULES.c.subject_id, _RULES.c.daily_limit).where(
    _RULES.c.daily_limit.is_not(None)
)


class RuleQueries(Queries):
    async def access_rules(self) -> dict[tuple[str, int], bool]:
        """Every /allow (True) and /deny (False), by (kind, subject id)."""
        return {(r.kind, r.subject_id): bool(r.allowed) for r in await self.core(_ACCESS)}

    async def daily_limit_overrides(self) -> dict[tuple[str, int], int]:
        """Every /quota override, by (kind, subject id)."""
        return {(r.kind, r.subject_id): int(r.daily_limit) for r in await self.core(_LIMITS)}

    async def set_allowed(self, kind: str, subject_id: int, allowed: bool, by: int) -> None:
        """One statement: the subject's rule allows (or denies) it; its limit stays."""
        await self._set_rule(kind, subject_id, by, allowed=allowed)

    async def set_daily_limit(self, kind: str, subject_id: int, limit: int | None, by: int) -> None:
        """One statement: the subject's daily image limit (None: the default); its access stays."""
        await self._set_rule(kind, subject_id, by, daily_limit=limit)

    async def _set_rule(self, kind: str, subject_id: int, by: int, **rule: object) -> None:
        row = {
            "kind": kind,
            "subject_id": subject_id,
            **rule,
            "updated_by": by,
            "updated_at": utcnow(),
        }
        await self.core(self._upsert(_RULES, _KEYS, row), row)
