"""**gather** for the processor: read a change's ticket once (with what a mailed release's
intake fills in), the bridge's record of the release, the early adopters that accepted it,
the facts the guards look at and the asker's roles (their RT groups, looked up once per person
and kept for ``ROLE_CACHE_SECONDS``), and ask the engine; the immutable views are ``gather``'s.

``InputGatherer`` is a base of ``processor.WorkflowProcessor`` and uses its parts (settings,
stores, definitions, repository). It writes nothing but the record of a release first seen
and the facts read from its ticket.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping

from bridge import errors, records
from bridge.records import RolloutState
from bridge.settings import model as settings_model
from bridge.store import early_adopters as acceptances
from bridge.store import releases
from bridge.tracker.client import TrackerClient
from repo_daemon.workflow import engine, mail_intake, model
from repo_daemon.workflow.gather import ChangeInputs, Inputs, People, TicketView
from repo_daemon.workflow.repository_actions import RepositorySteps, Services

# How long a person's RT groups (their workflow roles) are trusted before they are read again.
ROLE_CACHE_SECONDS = 300.0


class InputGatherer:
    """The gather step's reads, for the processor."""

    settings: settings_model.Settings
    store: releases.ReleaseStore
    adopters: acceptances.AcceptanceStore
    people: People
    mail_intake: mail_intake.MailIntake
    definitions: Mapping[str, model.Definition]
    repository: RepositorySteps
    _lock: threading.Lock
    _roles_seen: dict[str, tuple[float, frozenset[str]]]
    _monotonic: Callable[[], float]

    def _roles_of(self, client: TrackerClient, actor: str) -> frozenset[str]:
        """The workflow roles ``actor``'s RT groups give them (one RT call per person, then
        remembered for ``ROLE_CACHE_SECONDS``). A person RT does not know has none."""
        now = self._monotonic()
        with self._lock:
            seen = self._roles_seen.get(actor)
        if seen is not None and now - seen[0] < ROLE_CACHE_SECONDS:
            return seen[1]
        role_groups = self.settings.workflow.roles
        try:
            groups = client.groups_of(actor, among=set(role_groups.values())) if actor else None
        except errors.TrackerNotFound:
            groups = None
        roles = frozenset(role for role, group in role_groups.items() if group in (groups or ()))
        with self._lock:
            self._roles_seen[actor] = (now, roles)
        return roles

    def _gather(
        self,
        job: records.Job,
        client: TrackerClient,
        *,
        facts_too: bool = True,
        ticket: TicketView | None = None,
        check_roles: bool = True,
    ) -> tuple[Inputs, Services]:
        """Read the ticket once (unless given: then it is used as it is), the release's record
        and the facts; ask the engine (about the asker's roles too, unless ``check_roles`` is
        off: the bridge's own consequence of a change RT allowed, like closing the release of a
        ticket closed by hand)."""
        if ticket is None:
            as_read = client.get_ticket(job.ticket_id)
            filled = self.mail_intake.fill(client, as_read, job.request)
            ticket = TicketView.of(as_read, filled=filled)
        view = ticket
        release = self.store.ensure(
            view.id,
            state=job.request.previous,
            major_release=view.major_release,
            emergency=view.emergency,
        )
        self.store.update_facts(view.id, major_release=view.major_release, emergency=view.emergency)
        definition = self.definitions[self.settings.workflow.workflow_for(view.major_release)]
        facts = model.Facts()
        if facts_too:
            major = view.major_release
            asker = job.request.actor
            by_bridge = job.request.source is records.JobSource.BRIDGE or not check_roles
            facts = model.Facts(
                emergency=view.emergency,
                slot_holders=self.store.slot_holders(major, excluding=view.id) if major else (),
                failed_target=release.failed_target,
                actor=asker,
                actor_roles=None if by_bridge else self._roles_of(client, asker),
            )
        decision = engine.decide(
            definition,
            at=release.state,
            asked=job.request.current,
            facts=facts,
            role_groups=self.settings.workflow.roles,
        )
        inputs = Inputs(
            job=job,
            ticket=view,
            release=release,
            facts=facts,
            decision=decision,
            definition=definition,
            people=self.people,
            checkpoints=frozenset(self.store.steps_done(job.id)),
            known_major_releases=self.settings.workflow.major_releases,
            early_adopters=self.settings.workflow.early_adopters,
            accepted=self.adopters.of_release(view.id),
            read_release_xml=lambda: self.repository.read_release_xml(view),
        )
        services = Services(tracker=client, store=self.store, repository=self.repository)
        return inputs, services

    def _gather_change(self, job: records.Job, client: TrackerClient) -> ChangeInputs:
        """Read the ticket once and the release's record, for a change of another field."""
        ticket = TicketView.of(client.get_ticket(job.ticket_id))
        # No record yet: the bridge has processed no move of it, so it is where releases
        # start (the record is made by the first move, never here).
        release = self.store.get(ticket.id) or releases.Release(
            ticket_id=ticket.id, state=RolloutState.SUBMITTED, major_release=ticket.major_release,
            emergency=ticket.emergency, failed_target=None, last_transaction_id=None,
            updated_at=job.created_at,
        )  # fmt: skip
        return ChangeInputs(
            job=job,
            ticket=ticket,
            release=release,
            definition=self.definitions[self.settings.workflow.workflow_for(ticket.major_release)],
            people=self.people,
            early_adopters=self.settings.workflow.early_adopters,
            accepted=self.adopters.of_release(ticket.id),
            staged_rollout_group=self.settings.workflow.roles.get("sr", "sw-rel-sr"),
            member_of=lambda groups: self._groups_among(client, job.request.actor, groups),
        )

    def _groups_among(
        self, client: TrackerClient, actor: str, groups: Collection[str]
    ) -> frozenset[str]:
        """Those of ``groups`` ``actor`` is in (RT asked each time: who may add which team is
        checked once per change); a person RT does not know is in none."""
        if not actor:
            return frozenset()
        try:
            return client.groups_of(actor, among=groups)
        except errors.TrackerNotFound:
            return frozenset()
