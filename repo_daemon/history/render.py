"""A release's timeline as text for a release manager (``rollout release show``): the states
with time spent, each change with its numbered attempts, what was published where, the
staged-rollout slot, early adopters, what the ticket was told and the other events.

Pure: it formats a ``Timeline`` and reads nothing else. Everything that came from outside
(names, errors, details) is shown escaped (``bridge.printable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bridge import printable
from repo_daemon.history import records as r

_END = {
    r.DONE: "done",
    r.RETRY: "failed; tried again",
    r.FAILED: "failed; stopped",
    r.DEAD: "failed; dead-lettered",
    r.GIVEN_BACK: "given back untouched",
    r.LEASE_EXPIRED: "its daemon stopped; taken over",
    r.UNKNOWN: "no end recorded",
    r.RUNNING: "running (no end recorded yet)",
}


def time(value: datetime | None) -> str:
    """A time as the house prints it (UTC implied by the header), ``?`` when unknown."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "?"


def duration(seconds: float | None) -> str:
    """A length of time people read at a glance: ``0.41 s``, ``5m 30s``, ``2h 05m``,
    ``3d 04h``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def _e(value: object) -> str:
    return printable.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  "
        + "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)
        ).rstrip()
        for row in [header, *rows]
    ]


def text(timeline: r.Timeline) -> str:
    """The timeline as lines of text (no trailing newline)."""
    lines = _head(timeline)
    lines += ["", "states (UTC):"]
    rows = [
        [s.state, time(s.entered_at), "(now)" if s.current else time(s.left_at),
         duration(s.seconds), _e(s.by or "-")]
        for s in timeline.stays
    ]  # fmt: skip
    lines += _table(["STATE", "ENTERED", "LEFT", "TIME SPENT", "MOVED BY"], rows, {3}) if rows \
        else ["  none recorded"]  # fmt: skip
    lines += ["", "changes (UTC):" if timeline.changes else "changes: none"]
    for change in timeline.changes:
        lines += _change(change)
    lines += _published(timeline.publications)
    lines += _slots(timeline.slots)
    lines += _acceptances(timeline.acceptances)
    lines += _told(timeline.told)
    if timeline.notes:
        lines += ["", "other events (UTC):"]
        lines += [f"  {time(n.at)}  {n.kind}  {_e(n.detail)}".rstrip() for n in timeline.notes]
    return "\n".join(lines)


def _head(t: r.Timeline) -> list[str]:
    current = t.stays[-1] if t.stays else None
    where = t.state or "unknown"
    if current is not None and current.entered_at is not None:
        where += f" since {time(current.entered_at)} UTC ({duration(current.seconds)})"
    if t.state == "Failed" and t.failed_target:
        where += f"; a retry goes to {t.failed_target}"
    lines = [
        f"release {t.ticket_id}: {where}",
        f"  major release: {_e(t.major_release or '-')}"
        + ("  (emergency release)" if t.emergency else ""),
        f"  events:        {t.events}, seq {t.first_seq}–{t.last_seq}, "
        f"{time(t.first_at)} to {time(t.last_at)} UTC",
    ]
    if t.pruned:
        lines.append(
            f"  note:          events 1–{(t.first_seq or 1) - 1} of this release were deleted "
            "by retention; what they recorded is not shown"
        )
    return lines


def _change(c: r.Change) -> list[str]:
    values = f"{c.before} → {c.after}" if c.before else f"→ {c.after}" if c.after else ""
    if c.field and c.field != "RolloutProgress":
        values = f"{c.before or '(none)'} → {c.after or '(none)'}"
    what = f"{c.field or 'a change'} {values}".rstrip()
    said = [f"asked by {_e(c.asked_by or '?')} ({c.cause})"]
    if c.transaction_id is not None:
        said.append(f"RT transaction {c.transaction_id}")
    if c.queued_at is not None:
        said.append(f"queued {time(c.queued_at)}")
    lines = [f"  job {c.job_id}: {_e(what)} — {c.status}", f"    {', '.join(said)}"]
    if c.before_log_status is not None:
        lines.append(
            f"    before the event log: {c.before_log_status} after "
            f"{c.before_log_attempts if c.before_log_attempts is not None else '?'} attempt(s)"
        )
    entries: list[tuple[int, list[str]]] = [(a.event_id or 0, _attempt(a)) for a in c.attempts]
    entries += [
        (x.event_id, [f"    re-run by {_e(x.by or 'an operator')} at {time(x.at)} (was {x.was})"])
        for x in c.reruns
    ]
    for _, block in sorted(entries, key=lambda item: item[0]):
        lines += block
    return lines


def _attempt(a: r.Attempt) -> list[str]:
    number = a.number if a.number is not None else "?"
    head = f"    attempt {number}  {time(a.started_at)}  {a.cause}"
    if a.asked_by:
        head += f", asked by {_e(a.asked_by)}"
    if a.worker:
        head += f", taken by {_e(a.worker)}"
    lines = [head]
    if a.actions:
        width = max(len(x.name) for x in a.actions)
        for x in a.actions:
            outcome = ("after the failure: " if x.after_failure else "") + x.outcome
            took = "" if x.seconds is None or x.outcome == "done before" else duration(x.seconds)
            lines.append(f"      {_e(x.name):<{width}}  {outcome:<12}  {took:>8}".rstrip())
    if a.result is not None:
        lines.append(f"      {_result(a)}")
    if a.error:
        where = f" (in {_e(a.failed_action)})" if a.failed_action else ""
        lines.append(f"      error{where}: {_e(a.error)}")
    end = _END.get(a.end, a.end)
    if a.ended_at is not None:
        end += f" {time(a.ended_at)}, after {duration(a.seconds)}"
    if a.next_try_at is not None:
        end += f"; next try at {time(a.next_try_at)}"
    if a.rt_calls is not None:
        end += f"; {a.rt_calls} RT calls"
    lines.append(f"      ended: {end}")
    return lines


def _result(a: r.Attempt) -> str:
    came_from, to, asked = a.moved_from or "?", a.moved_to or "?", a.asked or "?"
    return {
        "transition_done": f"moved {came_from} → {to}",
        "transition_failed": f"failed: {came_from} → {to}",
        "transition_blocked": f"blocked: {asked} refused, stays {to} ({_e(a.result_detail)})",
        "transition_noop": f"nothing to do: already {to}",
        "transition_stale": f"not acted on: the release is {came_from} now",
    }.get(a.result or "", f"{a.result}: {_e(a.result_detail)}")


def _published(items: Sequence[r.Publication]) -> list[str]:
    if not items:
        return ["", "published: nowhere"]
    lines = ["", "published (UTC):"]
    for p in items:
        what = [f"snapshot {_e(p.snapshot)}"] if p.snapshot else []
        what += [f"{p.files:,} files"] if p.files is not None else []
        what += [f"{p.bytes:,} bytes"] if p.bytes is not None else []
        when = time(p.published_at) if p.published_at else "before the log".ljust(19)
        line = f"  {when}  {_e(p.area)}" + (f"  {', '.join(what)}" if what else "")
        if p.removed_at is not None:
            line += f"; taken out {time(p.removed_at)}"
        lines.append(line)
    return lines


def _slots(items: Sequence[r.SlotStay]) -> list[str]:
    if not items:
        return ["", "staged-rollout slot: never held"]
    lines = ["", "staged-rollout slot (UTC):"]
    for s in items:
        line = f"  {_e(s.major_release)}: taken {time(s.taken_at)}"
        line += " (emergency)" if s.emergency else ""
        line += f", freed {time(s.freed_at)}" if s.freed_at else ", still held"
        lines.append(line)
    return lines


def _acceptances(items: Sequence[r.Acceptance]) -> list[str]:
    if not items:
        return ["", "early adopters: none"]
    lines = ["", "early adopters (UTC):"]
    for x in items:
        line = f"  {_e(x.team)}"
        line += f" ({_e(x.ngi)})" if x.ngi else ""
        line += f": accepted {time(x.accepted_at)}"
        line += f" by {_e(x.accepted_by)}" if x.accepted_by else ""
        if x.withdrawn_at is not None:
            line += f"; withdrawn {time(x.withdrawn_at)} by {_e(x.withdrawn_by or '?')}"
        lines.append(line)
    return lines


def _told(items: Sequence[r.Told]) -> list[str]:
    if not items:
        return ["", "the ticket was told: nothing"]
    lines = ["", "the ticket was told (UTC):"]
    for t in items:
        said = []
        if t.fields:
            said.append("fields " + ", ".join(_e(f) for f in t.fields))
        if t.comment is not None:
            said.append(f'comment "{_e(t.comment)}"')
        if t.reply is not None:
            said.append(f'reply to {_e(t.to or "requestors")} "{_e(t.reply)}"')
        if t.untold:
            said.append("taken off the watchers again: " + ", ".join(_e(g) for g in t.untold))
        whose = f"job {t.job_id}" if t.job_id is not None else "no job"
        whose += f", attempt {t.attempt}" if t.attempt is not None else ""
        lines.append(f"  {time(t.at)}  {whose}: {'; '.join(said) or _e(t.step)}")
    return lines
