"""Rewrite the renderings of the shipped workflows in docs/workflow.md (a Mermaid diagram and
the text of ``rollout workflow show``, each with the shipped roles' RT groups).

Run from the checkout's root after changing schemas/workflows/*.toml or the renderer:
``python scripts/render_workflow_docs.py``. tests/unit/repo_daemon/workflow/test_loader.py
checks that the page shows exactly what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.settings.model import DEFAULT_ROLES
from repo_daemon.workflow import loader, render

SECTIONS = (
    ("staged", "## Standard workflow (`staged`)"),
    ("direct", "## Without staged rollout (`direct`)"),
)


def renderings(name: str) -> str:
    """The fenced Mermaid diagram and text of template ``name``, as the page shows them."""
    definition = loader.load_template(name)
    return (
        "```mermaid\n"
        + render.as_mermaid(definition).rstrip()
        + "\n```\n\n```\n"
        + render.as_text(definition, DEFAULT_ROLES).rstrip()
        + "\n```\n"
    )


def main() -> None:
    page = Path(__file__).resolve().parent.parent / "docs" / "workflow.md"
    text = page.read_text(encoding="utf-8")
    for name, heading in SECTIONS:
        start = text.index(heading)
        following = text.find("\n## ", start + len(heading))
        end = following if following != -1 else len(text)
        section = text[start:end]
        intro = section[: section.index("```mermaid")]
        rest = text[end:]
        text = text[:start] + intro + renderings(name) + ("\n" + rest.lstrip("\n") if rest else "")
    page.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
