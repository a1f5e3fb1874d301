"""What one transition writes back on the ticket, planned from the handlers' effects: pure
text and data, no RT calls.

The processor applies the plan in as few RT calls as RT allows: one PUT for fields, watchers
and status together, then one call per comment or reply. ``history_text`` renders the
``RolloutHistory`` field from the bridge's record of time in state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from bridge.records import RolloutState
from bridge.store import releases
from repo_daemon.workflow import effects


@dataclass(frozen=True, kw_only=True)
class TicketPlan:
    """Everything one transition writes on the ticket, folded from the effects in order."""

    fields: Mapping[str, str | tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    cc: tuple[str, ...] | None = None
    admin_cc: tuple[str, ...] | None = None
    owner: str | None = None
    resolve: bool = False
    comments: tuple[str, ...] = ()
    replies: tuple[str, ...] = ()
    # Groups Cc for the messages only: added with the watchers, taken off once they are sent.
    told: tuple[str, ...] = ()
    records: tuple[effects.Record, ...] = ()  # for the bridge's records, applied once
    follow_ups: tuple[effects.MoveNextDeferredIn, ...] = ()

    @classmethod
    def from_effects(cls, asked_for: Iterable[effects.Effect]) -> TicketPlan:
        """Fold effects in order: later fields and watchers win; messages keep their order,
        headlines first."""
        fields: dict[str, str | tuple[str, ...]] = {}
        cc: tuple[str, ...] | None = None
        admin_cc: tuple[str, ...] | None = None
        owner: str | None = None
        resolve = False
        comments: list[str] = []
        headlines: list[str] = []
        replies: list[str] = []
        told: list[str] = []
        kept: list[effects.Record] = []
        follow_ups: list[effects.MoveNextDeferredIn] = []
        for effect in asked_for:
            match effect:
                case effects.Comment(text=text, headline=True):
                    comments.insert(len(headlines), text)
                    headlines.append(text)
                case effects.Comment(text=text):
                    comments.append(text)
                case effects.Reply(text=text):
                    replies.append(text)
                case effects.SetFields(fields=more):
                    fields.update(more)
                case effects.SetWatchers(cc=new_cc, admin_cc=new_admin):
                    cc, admin_cc = new_cc, new_admin
                case effects.SetOwner(owner=new_owner):
                    owner = new_owner
                case effects.Resolve():
                    resolve = True
                case effects.TellGroups(groups=groups):
                    told.extend(groups)
                case effects.MoveNextDeferredIn():
                    follow_ups.append(effect)
                case (
                    effects.RecordAcceptance()
                    | effects.WithdrawAcceptance()
                    | effects.RecordStageReport()
                    | effects.RecordEmergency()
                ):
                    kept.append(effect)
        return cls(
            fields=MappingProxyType(fields),
            cc=cc,
            admin_cc=admin_cc,
            owner=owner,
            resolve=resolve,
            comments=tuple(comments),
            replies=tuple(replies),
            told=tuple(dict.fromkeys(told)),
            records=tuple(kept),
            follow_ups=tuple(follow_ups),
        )

    def cc_while_telling(self, current: Sequence[str]) -> tuple[str, ...] | None:
        """The Cc groups while the messages go out: the new watchers (or the ``current`` ones,
        when they do not change) plus the groups told. None: the Cc does not change."""
        if not self.told:
            return self.cc
        base = self.cc if self.cc is not None else tuple(current)
        return tuple(dict.fromkeys((*base, *self.told)))

    def cc_after_telling(self, current: Sequence[str]) -> tuple[str, ...]:
        """The Cc groups once the messages are out: the watchers, without the groups told
        (unless they watch anyway)."""
        return self.cc if self.cc is not None else tuple(current)


def history_text(
    spans: Sequence[releases.StateSpan], now: datetime, *, pending: RolloutState | None = None
) -> str:
    """The RolloutHistory field: one line per stay, oldest first, with how long it lasted.

    ``pending`` is the state being entered now (not in ``spans`` yet).
    """
    lines = []
    for i, span in enumerate(spans):
        is_last = i == len(spans) - 1
        left = span.left_at or (now if pending is not None and is_last else None)
        took = f"{_duration((left - span.entered_at).total_seconds())}" if left else "since"
        who = f" by {span.actor}" if span.actor else ""
        lines.append(f"{span.entered_at:%Y-%m-%d %H:%M:%S} UTC  {span.state.label:<18} {took}{who}")
    if pending is not None:
        lines.append(f"{now:%Y-%m-%d %H:%M:%S} UTC  {pending.label:<18} since")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
