"""A workflow definition as text, as a Mermaid state diagram and as Graphviz dot. Pure."""

from __future__ import annotations

from repo_daemon.workflow import actions, model

FORMATS = ("text", "mermaid", "dot")


def _label(row: model.Transition) -> str:
    parts = [f"?{g}" for g in row.guards]
    if row.result != row.target:
        parts.append(f"asked {row.target.label}")
    return " ".join(parts)


def _edges(definition: model.Definition) -> list[tuple[str, str, str]]:
    """(from, to, label) for every row and source, without repeats."""
    edges: dict[tuple[str, str, str], None] = {}
    for row in definition.transitions:
        for source in row.sources:
            edges[(source.label, row.result.label, _label(row))] = None
    return list(edges)


def as_text(definition: model.Definition) -> str:
    """The definition as people read it: states with their meaning, then the table."""
    lines = [f"workflow {definition.name}: {definition.description}", "", "states:"]
    for state, info in definition.states.items():
        marks = []
        if state == definition.initial:
            marks.append("initial")
        if state in definition.terminal:
            marks.append("final")
        mark = f" ({', '.join(marks)})" if marks else ""
        lines.append(f"  {state.label}{mark}: {info.description}")
    lines += ["", "transitions (first matching row wins; anything else is blocked):"]
    lines += [f"  {row.line:>2}. {row.render()}" for row in definition.transitions]
    failure = " ".join(f"{{{a}}}" for a in definition.failure_actions)
    lines += ["", f"on a processing failure: {failure} -> [Failed]"]
    lines += ["", "guards:"]
    used = sorted({g for row in definition.transitions for g in row.guards})
    lines += [f"  ?{g}: {model.GUARDS[g].meaning}" for g in used]
    if definition.groups:
        lines += ["", "groups of actions ({@name}):"]
        lines += [
            f"  @{name}: {' '.join(f'{{{a}}}' for a in members)}"
            for name, members in definition.groups.items()
        ]
    named = dict.fromkeys(a for row in definition.transitions for a in row.actions) | dict.fromkeys(
        definition.failure_actions
    )
    lines += ["", "actions:"]
    lines += [f"  {{{a}}}: {actions.REGISTRY[a].description}" for a in named]
    return "\n".join(lines) + "\n"


def as_mermaid(definition: model.Definition) -> str:
    """A Mermaid ``stateDiagram-v2`` (GitHub renders it in Markdown)."""
    lines = ["stateDiagram-v2", f"    [*] --> {definition.initial.label}"]
    for source, target, label in _edges(definition):
        lines.append(f"    {source} --> {target}" + (f": {label}" if label else ""))
    if definition.failure_actions:
        lines.append("    note right of Failed: any step with repository work may fail")
    for state in sorted(definition.terminal, key=lambda s: s.label):
        lines.append(f"    {state.label} --> [*]")
    return "\n".join(lines) + "\n"


def as_dot(definition: model.Definition) -> str:
    """A Graphviz digraph."""
    lines = [
        f'digraph "{definition.name}" {{',
        "    rankdir=LR;",
        "    node [shape=box, style=rounded];",
    ]
    for state in definition.terminal:
        lines.append(f'    "{state.label}" [peripheries=2];')
    for source, target, label in _edges(definition):
        lines.append(
            f'    "{source}" -> "{target}"' + (f' [label="{label}"]' if label else "") + ";"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(definition: model.Definition, fmt: str) -> str:
    """The definition in ``fmt`` (one of ``FORMATS``)."""
    return {"text": as_text, "mermaid": as_mermaid, "dot": as_dot}[fmt](definition)
