"""The layers only depend one way: nlp and analytics are pure, db knows no bot or Telegram."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "nlp": ("telegram", "bot", "db", "analytics", "sqlalchemy", "sqlmodel"),
    "analytics": ("telegram", "bot", "db", "sqlalchemy", "sqlmodel"),
    "db": ("telegram", "bot", "nlp", "analytics"),
    "bot/services": ("telegram",),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in forbidden:
                found.append(f"{path.relative_to(ROOT)} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_across_a_forbidden_edge(package):
    assert violations(package, FORBIDDEN[package]) == []


def test_the_check_catches_a_forbidden_import(tmp_path, monkeypatch):
    """The layering test itself can fail."""
    (tmp_path / "nlp").mkdir()
    (tmp_path / "nlp" / "bad.py").write_text("from telegram import Update\nimport db.models\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert violations("nlp", FORBIDDEN["nlp"]) == [
        "nlp/bad.py imports db.models",
        "nlp/bad.py imports telegram",
    ] or sorted(violations("nlp", FORBIDDEN["nlp"])) == [
        "nlp/bad.py imports db.models",
        "nlp/bad.py imports telegram",
    ]
