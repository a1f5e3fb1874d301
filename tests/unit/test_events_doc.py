"""docs/events.md lists every cause and every event kind with the fields of its data, exactly
as ``bridge.store.events`` defines them."""

from __future__ import annotations

from bridge.store import events
from tests.support import paths


def causes_table() -> str:
    rows = [f"| `{c.label}` | {c.description} |" for c in events.Cause]
    return "## Causes\n\n| cause | what started the work |\n|---|---|\n" + "\n".join(rows) + "\n"


def kinds_table() -> str:
    parts = ["## Kinds\n"]
    for kind in events.EventKind:
        parts.append(f"- **`{kind.value}`** — {kind.description}")
        parts += [f"  - `{name}`: {text}" for name, text in kind.fields.items()]
    return "\n".join(parts) + "\n"


def section(name: str) -> str:
    doc = (paths.ROOT / "docs" / "events.md").read_text()
    start = doc.index(f"<!-- section: {name} -->\n") + len(f"<!-- section: {name} -->\n")
    return doc[start : doc.index(f"<!-- end section: {name} -->")]


def test_every_cause_is_documented_as_defined() -> None:
    assert section("causes") == causes_table()


def test_every_kind_is_documented_with_its_fields() -> None:
    assert section("kinds") == kinds_table()
