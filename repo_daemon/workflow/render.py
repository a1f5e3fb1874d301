"""A workflow definition as text, as a Mermaid state diagram and as Graphviz dot, each showing
who may ask for every transition (its roles). Pure."""

from __future__ import annotations

from collections.abc import Mapping

from repo_daemon.workflow import actions, model

FORMATS = ("text", "mermaid", "dot")


def _label(row: model.Transition) -> str:
    parts = [f"@{r}" for r in row.roles] + [f"?{g}" for g in row.guards]
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


def as_text(definition: model.Definition, role_groups: Mapping[str, str] | None = None) -> str:
    """The definition as people read it: states with their meaning, the table, then what its
    roles, guards, groups and actions mean (with each role's RT group when given)."""
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
    roles = dict.fromkeys(r for row in definition.transitions for r in row.roles)
    if roles:
        lines += ["", "roles (@name: who may ask for a row):"]
        for role in roles:
            group = (role_groups or {}).get(role)
            in_rt = f" (RT group {group})" if group else ""
            lines.append(f"  @{role}: {definition.roles.get(role, role)}{in_rt}")
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


def render(
    definition: model.Definition, fmt: str, role_groups: Mapping[str, str] | None = None
) -> str:
    """The definition in ``fmt`` (one of ``FORMATS``); ``role_groups`` names each role's RT
    group in the text."""
    if fmt == "text":
        return as_text(definition, role_groups)
    return {"mermaid": as_mermaid, "dot": as_dot}[fmt](definition)
