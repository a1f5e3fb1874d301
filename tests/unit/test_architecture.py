"""docs/architecture.md and the tree stay in step: every module is on the page, every module on
the page exists, the layering holds, and the page's "how to add a workflow action" runs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bridge.records import RolloutState as S
from repo_daemon.workflow import actions, effects, loader, ticket_actions
from tests.support import paths
from tests.unit.repo_daemon.workflow.conftest import build_inputs

DOC = (paths.ROOT / "docs" / "architecture.md").read_text()
PACKAGES = ("bridge", "repo_daemon")


def _modules() -> list[Path]:
    found = []
    for package in PACKAGES:
        for path in sorted((paths.ROOT / package).rglob("*.py")):
            relative = path.relative_to(paths.ROOT)
            if "versions" in relative.parts or path.name in ("__init__.py", "__main__.py"):
                continue
            found.append(relative)
    return found


def test_every_module_is_on_the_page() -> None:
    missing = []
    for module in _modules():
        named = f"`{module}`" in DOC
        # The demo's parts are named together on the demo's line.
        named = named or (module.parent.name == "demo" and f"`{module.name}`" in DOC)
        if not named:
            missing.append(str(module))
    assert missing == [], "docs/architecture.md does not name these modules"


def test_every_path_on_the_page_exists() -> None:
    listed = re.findall(r"^- `((?:bridge|repo_daemon)/[^`]+)`", DOC, flags=re.M)
    assert len(listed) > 50
    assert [p for p in listed if not (paths.ROOT / p).exists()] == []


def test_bridge_never_imports_repo_daemon() -> None:
    offenders = []
    for path in (paths.ROOT / "bridge").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] == "repo_daemon"]
    assert offenders == []


def _example_blocks() -> list[str]:
    section = DOC[DOC.index("## How to add a workflow action") :]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_pages_example_action_works(monkeypatch: pytest.MonkeyPatch) -> None:
    handler_code, entry_code, test_code = _example_blocks()
    # 1. the handler, as if written in ticket_actions.py
    people_ns = dict(vars(ticket_actions))
    exec(handler_code, people_ns)  # noqa: S102 - our own documentation
    for name, value in people_ns.items():
        if name not in vars(ticket_actions):
            monkeypatch.setattr(ticket_actions, name, value, raising=False)
    # 2. the registry entry, as if written in actions.py
    entry = eval(entry_code, dict(vars(actions), people=ticket_actions))  # noqa: S307
    assert isinstance(entry, actions.Action)
    monkeypatch.setitem(actions.REGISTRY, entry.name, entry)  # type: ignore[index]
    # 3. the test, run
    test_ns = dict(ticket_actions=ticket_actions, effects=effects, S=S)
    exec(test_code, test_ns)  # noqa: S102
    (test,) = [v for k, v in test_ns.items() if k.startswith("test_")]
    test(build_inputs)
    # 4. a definition that uses it loads, and the row runs it
    text = loader.template_text("staged").replace(
        '"promote_next_deferred"]', f'"promote_next_deferred", "{entry.name}"]', 1
    )
    definition = loader.parse(text, source="staged.toml with the example")
    inputs = build_inputs(S.STAGE_ROLLOUT, S.PRODUCTION, definition=definition)
    assert inputs.decision.actions[-1] == entry.name
    result = actions.REGISTRY[entry.name].handler(inputs, None)  # type: ignore[arg-type]
    assert result.effects == (effects.Comment(text="Sites install it from the UMD-5 repository."),)
