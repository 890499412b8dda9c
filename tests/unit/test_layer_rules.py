"""Rules of the layers that a reading of the source can check: the blob store alone writes and
deletes image files; the services never touch a dialect's JSON; only storage speaks SQL."""

from __future__ import annotations

import ast
from pathlib import Path

import bot

BOT = Path(bot.__file__).parent
BLOBS = BOT / "storage" / "blobs.py"
# Calls that delete a file or a directory, by the attribute or function name they end in
# (`remove` only as os.remove: lists and sets have one too).
_DELETES = frozenset({"unlink", "rmtree", "rmdir"})
_BINARY_WRITE_MODES = ("w", "a", "x", "+")


def _sources(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def _name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _deletes(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "remove":
        return isinstance(func.value, ast.Name) and func.value.id == "os"
    return _name(call) in _DELETES


def _mode(call: ast.Call) -> str:
    """The literal mode of an open()/fdopen() call ("r" when none is given)."""
    if len(call.args) >= 2 and isinstance(call.args[1], ast.Constant):
        return str(call.args[1].value)
    for kw in call.keywords:
        if kw.arg == "mode" and isinstance(kw.value, ast.Constant):
            return str(kw.value.value)
    return "r"


def _file_writes(path: Path) -> list[str]:
    """Where a file writes bytes to disk or deletes something: `path:line call`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node)
        mode = _mode(node) if name in ("open", "fdopen") else ""
        binary_write = "b" in mode and any(m in mode for m in _BINARY_WRITE_MODES)
        if name == "write_bytes" or _deletes(node) or binary_write:
            found.append(f"{path.relative_to(BOT)}:{node.lineno} {name}")
    return found


def test_only_the_blob_store_writes_or_deletes_files() -> None:
    found = [w for path in _sources(BOT) if path != BLOBS for w in _file_writes(path)]
    assert found == []


def test_the_rule_sees_the_blob_stores_own_writes() -> None:
    assert any("fdopen" in w for w in _file_writes(BLOBS))
    assert any("unlink" in w for w in _file_writes(BLOBS))


def test_services_never_name_a_dialects_json_fields() -> None:
    words = ("inlineData", "inline_data", "mimeType", "thoughtSignature", "image_url")
    found = [
        f"{path.relative_to(BOT)}: {word}"
        for path in _sources(BOT / "services")
        for word in words
        if word in path.read_text(encoding="utf-8")
    ]
    assert found == []


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_module_outside_storage_imports_sqlalchemy() -> None:
    speaking = [
        path.relative_to(BOT).as_posix()
        for path in _sources(BOT)
        if path.relative_to(BOT).parts[0] != "storage"
        and any(name.split(".")[0] == "sqlalchemy" for name in _imports(path))
    ]
    assert speaking == []


def _layer_imports(layer: str) -> dict[str, set[str]]:
    return {
        path.relative_to(BOT).as_posix(): {n for n in _imports(path) if n.startswith("bot.")}
        for path in _sources(BOT / layer)
    }


def test_the_telegram_layer_reaches_the_others_only_through_the_services() -> None:
    reaching = {
        path: sorted(n for n in names if n.startswith(("bot.providers", "bot.storage")))
        for path, names in _layer_imports("telegram").items()
    }
    assert {path: names for path, names in reaching.items() if names} == {}


def test_the_services_and_below_never_import_telegram() -> None:
    for layer in ("services", "providers", "storage"):
        for path, names in _layer_imports(layer).items():
            assert not any(n.startswith("bot.telegram") for n in names), path
        for path in _sources(BOT / layer):
            assert "telegram" not in {n.split(".")[0] for n in _imports(path)}, path
