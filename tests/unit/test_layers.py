"""Only bot/storage/ speaks SQL: no other module imports SQLAlchemy."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parents[2] / "bot"
#: Modules still building their own statements (through the repository's session) until they
#: move to repository methods: services/conversation.py can use Repo.image() and job_turn().
NOT_YET = {"services/conversation.py"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_module_outside_storage_imports_sqlalchemy() -> None:
    speaking = {
        path.relative_to(BOT).as_posix()
        for path in BOT.rglob("*.py")
        if path.relative_to(BOT).parts[0] != "storage"
        and any(name.split(".")[0] == "sqlalchemy" for name in _imports(path))
    }
    assert speaking <= NOT_YET
