"""The core stays platform-blind: bot/ and commands/ never import a chat platform library."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"discord", "slack_bolt", "slack_sdk", "adapters"}
CORE_FILES = sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "commands").rglob("*.py")])


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    return {name.split(".")[0] for name in names}


def test_core_files_exist() -> None:
    assert len(CORE_FILES) > 5


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_platforms(path: Path) -> None:
    assert not imported_roots(path) & FORBIDDEN


def test_the_check_catches_a_platform_import(tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.py"
    leaky.write_text("import os\nfrom slack_sdk.web import WebClient\nimport discord.ui as ui\n")
    assert imported_roots(leaky) & FORBIDDEN == {"slack_sdk", "discord"}
