"""**apply**, the records' part: what the effects ask the bridge to keep — an early adopter's
acceptance or withdrawal, the time of the staged-rollout report, EmergencyRelease — written to
the bridge's stores once the ticket is written back.

Each write is idempotent (an acceptance is keyed by RT's transaction, the report's time is
only the first), so a retried job may apply them again. It decides nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bridge.records import RolloutState
from bridge.store import early_adopters, releases
from repo_daemon.workflow import effects
from repo_daemon.workflow.gather import TicketView


@dataclass(frozen=True, kw_only=True)
class Records:
    """The stores the record effects go to."""

    releases: releases.ReleaseStore
    acceptances: early_adopters.AcceptanceStore

    def keep(self, ticket: TicketView, kept: Sequence[effects.Record]) -> None:
        """Write each record effect for ``ticket``'s release."""
        for record in kept:
            match record:
                case effects.RecordAcceptance():
                    self.acceptances.accept(
                        ticket_id=ticket.id, team=record.team, ngi=record.ngi,
                        major_release=record.major_release, actor=record.actor, at=record.at,
                        transaction_id=record.transaction_id,
                    )  # fmt: skip
                case effects.WithdrawAcceptance():
                    self.acceptances.withdraw(
                        ticket_id=ticket.id, team=record.team, actor=record.actor,
                        at=record.at, transaction_id=record.transaction_id,
                    )  # fmt: skip
                case effects.RecordStageReport():
                    # The record is made by the first move; a report before any is kept too.
                    self.releases.ensure(
                        ticket.id, state=RolloutState.SUBMITTED,
                        major_release=ticket.major_release, emergency=ticket.emergency,
                    )  # fmt: skip
                    self.releases.record_stage_report(ticket.id, at=record.at)
                case effects.RecordEmergency():
                    self.releases.update_facts(
                        ticket.id, major_release=ticket.major_release, emergency=record.emergency
                    )
