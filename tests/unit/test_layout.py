"""The direction of dependencies: ``repo_daemon`` may import ``bridge``, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_bridge_never_imports_repo_daemon() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            i for i in _imports(path) if i.split(".")[0] == "repo_daemon"
        )
        for path in (ROOT / "bridge").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_shell_true_anywhere() -> None:
    for package in ("bridge", "repo_daemon"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.keyword) and node.arg == "shell":
                    assert not (isinstance(node.value, ast.Constant) and node.value.value), path
