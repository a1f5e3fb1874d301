"""Reading a workflow definition (TOML with a table of rows) and checking it against the
action registry (``workflow.actions``) and the guards (``model.GUARDS``).

A row names who may ask for it as ``@role`` tokens after ``<To>``, from the definition's
``[roles]`` table (role = who, in words; settings map each role to an RT group). A row's actions
may name a group of actions from the definition's ``[groups]`` table as ``{@name}``; groups are
expanded here, so the rest of the code sees plain action lists. A
state in ``[states]`` is either a description or a table with ``description``, ``news`` (what
people are told when a release enters it), ``reply`` (what the provider is told) and ``cc``
(the groups that are Cc while a release is there).

Everything wrong is collected and reported together as ``WorkflowInvalid``, each problem with
where it is (file and row): unknown states, roles, actions or guards, rows that cannot parse,
states no row reaches, open states with no way out, a row from a final state to an open one, a
final state reached without resolving the ticket, and rows that an earlier row hides.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from bridge.records import RolloutState
from repo_daemon.workflow import actions, model

TEMPLATES = ("staged", "direct")

_ROW = re.compile(
    r"^\s*\[(?P<sources>[^\]]+)\]\s*-\s*<(?P<target>[^>]+)>"
    r"(?P<middle>(?:\s*(?:@\w+|\?\w+|\{@?\w+\}))*)\s*->\s*\[(?P<result>[^\]]+)\]\s*$"
)
_TOKEN = re.compile(r"\{(@?\w+)\}|\?(\w+)|@(\w+)")
_LABELS = {s.label: s for s in RolloutState}


def template_text(name: str) -> str:
    """The shipped template ``name`` (see ``TEMPLATES``). Raises ``WorkflowInvalid``."""
    if name not in TEMPLATES:
        raise model.WorkflowInvalid(
            name, [f"no workflow template {name!r}; templates: {', '.join(TEMPLATES)}"]
        )
    return (
        resources.files("schemas").joinpath("workflows", f"{name}.toml").read_text(encoding="utf-8")
    )


def load_template(name: str) -> model.Definition:
    """The shipped template ``name``, checked."""
    return parse(template_text(name), source=f"schemas/workflows/{name}.toml")


def load_file(path: Path) -> model.Definition:
    """A definition from a file of one's own, checked."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise model.WorkflowInvalid(str(path), [f"cannot read it ({exc.strerror})"]) from exc
    return parse(text, source=str(path))


def _state(label: str, where: str, problems: list[str]) -> RolloutState | None:
    state = _LABELS.get(label.strip())
    if state is None:
        problems.append(f"{where}: unknown state {label.strip()!r}; states: {', '.join(_LABELS)}")
    return state


def _parse_row(
    text: str,
    line: int,
    groups: Mapping[str, tuple[str, ...]],
    roles: Mapping[str, str],
    problems: list[str],
) -> model.Transition | None:
    where = f"row {line}"
    match = _ROW.match(text)
    if match is None:
        problems.append(
            f"{where}: cannot read {text!r}; write "
            "[From|From] - <To> @role ?guard {action} -> [Result]"
        )
        return None
    sources = [_state(s, where, problems) for s in match["sources"].split("|")]
    target = _state(match["target"], where, problems)
    result = _state(match["result"], where, problems)
    guards: list[str] = []
    row_roles: list[str] = []
    row_actions: list[str] = []
    written: list[str] = []
    for action, guard, role in _TOKEN.findall(match["middle"]):
        if role:
            if row_actions or guards:
                problems.append(f"{where}: write @{role} before the guards and actions")
            if role not in roles:
                problems.append(
                    f"{where}: unknown role @{role}; roles ([roles]): "
                    f"{', '.join('@' + r for r in roles) or '(none)'}"
                )
            if role in row_roles:
                problems.append(f"{where}: @{role} appears more than once")
            row_roles.append(role)
        elif guard:
            if guard not in model.GUARDS:
                problems.append(
                    f"{where}: unknown guard ?{guard}; guards: {', '.join(model.GUARDS)}"
                )
            guards.append(guard)
        elif action.startswith("@"):
            written.append(action)
            if action[1:] not in groups:
                problems.append(
                    f"{where}: unknown group {{{action}}}; groups: "
                    f"{', '.join('@' + g for g in groups) or '(none)'}"
                )
            row_actions.extend(groups.get(action[1:], ()))
        else:
            written.append(action)
            if action not in actions.REGISTRY:
                problems.append(f"{where}: unknown action {{{action}}}")
            row_actions.append(action)
    if None in sources or target is None or result is None:
        return None
    return model.Transition(
        sources=tuple(s for s in sources if s is not None),
        target=target,
        roles=tuple(row_roles),
        guards=tuple(guards),
        actions=tuple(row_actions),
        result=result,
        line=line,
        written=tuple(written),
    )


def parse(text: str, *, source: str) -> model.Definition:
    """Parse and check a definition. Raises ``WorkflowInvalid`` listing every problem."""
    try:
        raw: Mapping[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise model.WorkflowInvalid(source, [f"not valid TOML ({exc})"]) from exc
    problems: list[str] = []
    for key in ("name", "initial", "terminal", "transitions", "states"):
        if key not in raw:
            problems.append(f"missing {key!r}")
    if problems:
        raise model.WorkflowInvalid(source, problems)

    states: dict[RolloutState, model.StateInfo] = {}
    for label, value in dict(raw["states"]).items():
        state = _state(label, "[states]", problems)
        info = _state_info(label, value, problems)
        if state is not None and info is not None:
            states[state] = info
    groups = _groups(raw.get("groups", {}), problems)
    roles = _roles(raw.get("roles", {}), problems)
    initial = _state(str(raw["initial"]), "initial", problems)
    terminal = {
        s for s in (_state(str(t), "terminal", problems) for t in raw["terminal"]) if s is not None
    }
    failure_actions = tuple(str(a) for a in raw.get("failure_actions", ()))
    for action in failure_actions:
        if action not in actions.REGISTRY:
            problems.append(f"failure_actions: unknown action {{{action}}}")
    rows = [
        row
        for line, text_row in enumerate(raw["transitions"], start=1)
        if (row := _parse_row(str(text_row), line, groups, roles, problems)) is not None
    ]
    if problems:
        raise model.WorkflowInvalid(source, problems)

    definition = model.Definition(
        name=str(raw["name"]),
        description=str(raw.get("description", "")),
        initial=initial,  # type: ignore[arg-type]  # None was reported above
        states=states,
        terminal=frozenset(terminal),
        transitions=tuple(rows),
        failure_actions=failure_actions,
        groups=groups,
        roles=roles,
    )
    problems.extend(check(definition))
    if problems:
        raise model.WorkflowInvalid(source, problems)
    return definition


def check(definition: model.Definition) -> list[str]:
    """The structural problems of a parsed definition (empty when it is sound)."""
    problems: list[str] = []
    used = set(definition.states)
    failed = RolloutState.FAILED
    if definition.initial not in used:
        problems.append(f"initial state {definition.initial.label} is not in [states]")
    for state in definition.terminal - used:
        problems.append(f"terminal state {state.label} is not in [states]")
    for row in definition.transitions:
        for state in (*row.sources, row.target, row.result):
            if state not in used:
                problems.append(f"row {row.line}: {state.label} is not in [states]")
        # A final state's ticket is resolved: a row may leave it (a withdrawal from
        # Production) only for another final state, which resolves the ticket again.
        exits = [s for s in row.sources if s in definition.terminal]
        if exits and row.result not in definition.terminal:
            problems.append(
                f"row {row.line}: leaves the final state {exits[0].label} for the open state "
                f"{row.result.label}; a row from a final state must end in a final state"
            )
        resolving = [
            a for a in row.actions if (act := actions.REGISTRY.get(a)) and act.resolves_ticket
        ]
        if row.result in definition.terminal and not resolving:
            problems.append(
                f"row {row.line}: ends in the final state {row.result.label} without an action "
                "that resolves the ticket ({resolve_ticket})"
            )
        if row.target == failed:
            problems.append(f"row {row.line}: Failed is set by the bridge, not asked for")
        guards = [model.GUARDS[g] for g in row.guards]
        for guard in guards:
            if guard.only_from_failed and row.sources != (failed,):
                problems.append(f"row {row.line}: ?{guard.name} only makes sense from [Failed]")
        if any(g.opposite in row.guards for g in guards):
            problems.append(f"row {row.line}: its guards contradict each other")
        for name in sorted({a for a in row.actions if row.actions.count(a) > 1}):
            problems.append(f"row {row.line}: {{{name}}} appears more than once")
    problems.extend(_hidden_rows(definition))

    # Reachability: from the initial state along rows; Failed is reached by any row with work.
    reached = {definition.initial}
    frontier = [definition.initial]
    while frontier:
        state = frontier.pop()
        for row in definition.rows_from(state):
            nexts = {row.result}
            if failed in used and row.actions:
                nexts.add(failed)
            for nxt in nexts - reached:
                reached.add(nxt)
                frontier.append(nxt)
    for state in sorted(used - reached, key=lambda s: s.label):
        problems.append(f"state {state.label} cannot be reached from {definition.initial.label}")
    for state in sorted(used - definition.terminal, key=lambda s: s.label):
        if not definition.rows_from(state):
            problems.append(f"state {state.label} is not final but no row leaves it")
    if failed in used and not definition.failure_actions:
        problems.append("Failed is used but failure_actions is empty: say what a failure does")
    return problems


def _hidden_rows(definition: model.Definition) -> list[str]:
    """Rows that can never match because an earlier row with fewer guards, open to everyone
    the later one is open to, always wins first."""
    problems = []
    rows = definition.transitions
    for i, later in enumerate(rows):
        for earlier in rows[:i]:
            if (
                earlier.target == later.target
                and set(later.sources) <= set(earlier.sources)
                and set(earlier.guards) <= set(later.guards)
                and (not earlier.roles or (later.roles and set(later.roles) <= set(earlier.roles)))
            ):
                problems.append(f"row {later.line}: never used, row {earlier.line} matches first")
                break
    return problems


def _state_info(label: str, value: Any, problems: list[str]) -> model.StateInfo | None:
    where = f"[states]: {label}"
    if isinstance(value, str):
        value = {"description": value}
    if not isinstance(value, Mapping):
        problems.append(f"{where}: write a description, or a table with description, news, cc")
        return None
    unknown = sorted(set(value) - {"description", "news", "reply", "cc", "owner"})
    if unknown:
        problems.append(
            f"{where}: unknown keys {', '.join(unknown)} (description, news, reply, cc, owner)"
        )
    description = str(value.get("description", "")).strip()
    if not description:
        problems.append(f"{where} has no description")
    cc = value.get("cc", [])
    if not isinstance(cc, list) or not all(isinstance(g, str) and g.strip() for g in cc):
        problems.append(f"{where}: cc must be a list of RT group names")
        cc = []
    return model.StateInfo(
        description=description,
        news=str(value.get("news", "")).strip(),
        reply=str(value.get("reply", "")).strip(),
        cc=tuple(g.strip() for g in cc),
        owner=str(value.get("owner", "")).strip(),
    )


def _groups(raw: Any, problems: list[str]) -> dict[str, tuple[str, ...]]:
    """The ``[groups]`` table: name -> actions (registered ones only; no nesting)."""
    if not isinstance(raw, Mapping):
        problems.append("[groups]: must be a table of name = [actions]")
        return {}
    groups: dict[str, tuple[str, ...]] = {}
    for name, members in raw.items():
        if not re.fullmatch(r"\w+", str(name)):
            problems.append(f"[groups]: {name!r} is not a name (letters, digits, _)")
            continue
        if not isinstance(members, list) or not members:
            problems.append(f"[groups]: {name} must be a non-empty list of actions")
            continue
        for action in members:
            if str(action) not in actions.REGISTRY:
                problems.append(f"[groups]: {name}: unknown action {{{action}}}")
        groups[str(name)] = tuple(str(a) for a in members)
    return groups


def _roles(raw: Any, problems: list[str]) -> dict[str, str]:
    """The ``[roles]`` table: role name -> who they are, in words."""
    if not isinstance(raw, Mapping):
        problems.append('[roles]: must be a table of name = "who they are"')
        return {}
    roles: dict[str, str] = {}
    for name, who in raw.items():
        if not re.fullmatch(r"\w+", str(name)):
            problems.append(f"[roles]: {name!r} is not a name (letters, digits, _)")
            continue
        if not isinstance(who, str) or not who.strip():
            problems.append(f"[roles]: {name} must say who they are (a non-empty string)")
            continue
        roles[str(name)] = who.strip()
    return roles
