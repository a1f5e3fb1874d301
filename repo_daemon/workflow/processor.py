"""The workflow processor: one queued RolloutProgress change, in four steps.

1. **gather** — read the ticket once into a ``TicketView`` (with what a mailed release's
   intake fills in: ``mail_intake``), the bridge's record of the release, the facts the guards
   look at, and the roles of the person who asked (their RT groups, looked up once per person
   and kept for ``ROLE_CACHE_SECONDS``);
2. **decide** — ask the pure engine (MOVE, STAY or BLOCK);
3. **act** — run the row's actions by looking each name up in the registry
   (``workflow.actions``); handlers take the immutable ``Inputs`` and return effects;
4. **apply** — fold the effects into one ticket write-back (one PUT for fields, watchers and
   status, then one comment and one reply at most), record the move and the time in state,
   then run the follow-ups the effects asked for (moving the next Deferred release in).

Work with lasting results is checkpointed on the job, so a retried job resumes after what was
done; pure actions run again so the write-back is whole. A permanent failure sets the ticket to
Failed with a comment a person can act on; a transient one propagates to the runner (retried,
then the dead letter, which ``gave_up`` turns into Failed too). This module knows no action by
name.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from bridge import errors, records
from bridge.records import RolloutState
from bridge.settings import model as settings_model
from bridge.store import events, queue, releases
from bridge.tracker.client import TrackerClient
from repo_daemon import errors as daemon_errors
from repo_daemon.workflow import effects, engine, loader, mail_intake, model, ticket_plan
from repo_daemon.workflow import steps as repository_steps
from repo_daemon.workflow.actions import REGISTRY
from repo_daemon.workflow.gather import Inputs, People, TicketView
from repo_daemon.workflow.repository_actions import RepositorySteps, Services

logger = logging.getLogger(__name__)

ClientFactory = Callable[[], TrackerClient]
BRIDGE_ACTOR = "rollout-bridge"

# How long a person's RT groups (their workflow roles) are trusted before they are read again.
ROLE_CACHE_SECONDS = 300.0

# Checkpoints of the write-back itself (beside the actions' own).
_WROTE_TICKET, _COMMENTED, _REPLIED = "write_ticket", "comment", "reply"


class WorkflowProcessor:
    """The processor ``rollout daemon`` uses: the release workflow against RT."""

    def __init__(
        self,
        settings: settings_model.Settings,
        jobs: queue.Queue,
        store: releases.ReleaseStore,
        client_factory: ClientFactory,
        *,
        repository: RepositorySteps,
        definitions: Mapping[str, model.Definition] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.queue = jobs
        self.store = store
        self.people = People(
            cc_overrides=settings.workflow.cc,
            admin_cc=settings.workflow.admin_cc,
            owner_overrides=settings.workflow.owners,
        )
        self.mail_intake = mail_intake.MailIntake.from_settings(settings)
        self._factory = client_factory
        self._local = threading.local()
        self._clients: list[TrackerClient] = []
        self._lock = threading.Lock()
        self._roles_seen: dict[str, tuple[float, frozenset[str]]] = {}
        self._monotonic = monotonic
        self.definitions = dict(
            definitions or {n: loader.load_template(n) for n in loader.TEMPLATES}
        )
        for name in {settings.workflow.default, *settings.workflow.per_major_release.values()}:
            if name not in self.definitions:
                raise model.WorkflowInvalid(name, [f"no workflow named {name!r} is loaded"])
        for name, definition in self.definitions.items():
            used = {r for row in definition.transitions for r in row.roles}
            unmapped = sorted(used - set(settings.workflow.roles))
            if unmapped:
                raise model.WorkflowInvalid(
                    name,
                    [
                        f"its rows name the role @{role} but the settings give it no RT group; "
                        f"add {role}=<group> to ROLLOUT_ROLES (or the [roles] table)"
                        for role in unmapped
                    ],
                )

    # -- plumbing -------------------------------------------------------------------------

    def _client(self) -> TrackerClient:
        client: TrackerClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._factory()
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        """Close the tracker clients this processor made."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def _event(self, kind: events.EventKind, job: records.Job, detail: str) -> None:
        self.queue.record_event(
            kind,
            ticket_id=job.ticket_id,
            transaction_id=job.request.transaction_id,
            job_id=job.id,
            detail=detail,
        )

    # -- gather ---------------------------------------------------------------------------

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
        self, job: records.Job, client: TrackerClient, *, facts_too: bool = True
    ) -> tuple[Inputs, Services]:
        """Read the ticket once, the release's record and the facts; ask the engine."""
        as_read = client.get_ticket(job.ticket_id)
        filled = self.mail_intake.fill(client, as_read, job.request)
        ticket = TicketView.of(as_read, filled=filled)
        release = self.store.ensure(
            ticket.id,
            state=job.request.previous,
            major_release=ticket.major_release,
            emergency=ticket.emergency,
        )
        self.store.update_facts(
            ticket.id, major_release=ticket.major_release, emergency=ticket.emergency
        )
        definition = self.definitions[self.settings.workflow.workflow_for(ticket.major_release)]
        facts = model.Facts()
        if facts_too:
            major = ticket.major_release
            asker = job.request.actor
            by_bridge = job.request.source is records.JobSource.BRIDGE
            facts = model.Facts(
                emergency=ticket.emergency,
                slot_holders=self.store.slot_holders(major, excluding=ticket.id) if major else (),
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
            ticket=ticket,
            release=release,
            facts=facts,
            decision=decision,
            definition=definition,
            people=self.people,
            checkpoints=frozenset(self.store.steps_done(job.id)),
            known_major_releases=self.settings.workflow.major_releases,
            read_release_xml=lambda: self.repository.read_release_xml(ticket),
        )
        services = Services(tracker=client, store=self.store, repository=self.repository)
        return inputs, services

    # -- processing -----------------------------------------------------------------------

    def process(self, job: records.Job) -> None:
        """Carry out one change. Raises transient errors for the runner to retry."""
        client = self._client()
        calls_before = client.total_round_trips()
        request = job.request
        inputs, services = self._gather(job, client)
        if request.source is records.JobSource.BRIDGE and inputs.came_from != request.previous:
            self._event(
                events.EventKind.TRANSITION_STALE,
                job,
                f"the automatic move {request.previous.label} → {request.current.label} no "
                f"longer applies: the release is {inputs.came_from.label}",
            )
            return
        outcome = inputs.decision.outcome
        if outcome is engine.Outcome.STAY:
            self._event(events.EventKind.TRANSITION_NOOP, job, inputs.decision.reason)
        elif outcome is engine.Outcome.BLOCK:
            self._block(inputs, client)
        else:
            self._move(inputs, services)
        calls = client.total_round_trips() - calls_before
        self._event(
            events.EventKind.RT_CALLS, job, f"{calls} RT calls for {request.previous.label} → "
            f"{request.current.label} ({outcome.value})",
        )  # fmt: skip

    def gave_up(self, job: records.Job, message: str) -> None:
        """A dead-lettered job: set the ticket to Failed and say why, when RT answers."""
        inputs, services = self._gather(job, self._client(), facts_too=False)
        self._fail(inputs, services, f"it kept failing and was given up: {message}")

    def _block(self, inputs: Inputs, client: TrackerClient) -> None:
        asked, stays = inputs.job.request.current, inputs.decision.state
        if inputs.ticket.field("RolloutProgress") == asked.label:
            client.update_ticket(
                inputs.ticket.id,
                custom_fields={"RolloutProgress": stays.label},
                current=inputs.ticket.ticket,
            )
        client.comment(inputs.ticket.id, f"Blocked: {inputs.decision.reason}.")
        self._event(events.EventKind.TRANSITION_BLOCKED, inputs.job, inputs.decision.reason)

    # -- act ------------------------------------------------------------------------------

    def _act(
        self, names: Sequence[str], inputs: Inputs, services: Services
    ) -> list[effects.Effect]:
        """Run ``names`` in order through the registry; checkpoint lasting work. Raises what
        a handler raises."""
        asked_for: list[effects.Effect] = []
        for name in names:
            action = REGISTRY[name]  # the loader refuses names the registry does not know
            if name in inputs.checkpoints and not action.rerun_on_resume:
                continue
            result = action.handler(inputs, services)
            if action.checkpointed:
                self.store.mark_step(inputs.job.id, name, result.detail)
            asked_for.extend(result.effects)
        return asked_for

    def _move(self, inputs: Inputs, services: Services) -> None:
        try:
            asked_for = self._act(inputs.decision.actions, inputs, services)
        except (errors.BridgeError, daemon_errors.DaemonError) as exc:
            if exc.transient:
                raise
            for_provider = isinstance(exc, daemon_errors.DaemonError) and exc.provider_can_fix
            self._fail(inputs, services, str(exc), for_provider=for_provider)
            return
        follow_ups = self._apply(inputs, services, asked_for, inputs.decision.state)
        self._event(events.EventKind.TRANSITION_DONE, inputs.job, inputs.decision.reason)
        self._follow_up(inputs, follow_ups)

    def _fail(
        self, inputs: Inputs, services: Services, error: str, *, for_provider: bool = False
    ) -> None:
        asked = inputs.job.request.current
        failure = engine.on_failure(
            inputs.definition, at=inputs.came_from, attempted=asked, error=error
        )
        failed = dataclasses.replace(
            inputs, decision=failure, failure=failure.reason, failure_for_provider=for_provider
        )
        # The failure actions only tell people (the loader keeps it so): nothing to undo.
        asked_for = self._act(failure.actions, failed, services)
        follow_ups = self._apply(
            failed, services, asked_for, RolloutState.FAILED, failed_target=asked
        )
        self._event(events.EventKind.TRANSITION_FAILED, inputs.job, failure.reason)
        self._follow_up(inputs, follow_ups)

    # -- apply ----------------------------------------------------------------------------

    def _apply(
        self,
        inputs: Inputs,
        services: Services,
        asked_for: Sequence[effects.Effect],
        state: RolloutState,
        *,
        failed_target: RolloutState | None = None,
    ) -> tuple[effects.MoveNextDeferredIn, ...]:
        """The ticket write-back and the move in the bridge's records; returns the follow-ups
        to run once the move is recorded."""
        plan = ticket_plan.TicketPlan.from_effects(asked_for)
        self._write_back(inputs, services.tracker, plan, state)
        actor = BRIDGE_ACTOR if failed_target is not None else inputs.job.request.actor
        self.store.move(
            inputs.ticket.id,
            state,
            transaction_id=inputs.job.request.transaction_id,
            actor=actor,
            failed_target=failed_target,
        )
        return plan.follow_ups

    def _follow_up(self, inputs: Inputs, follow_ups: Sequence[effects.MoveNextDeferredIn]) -> None:
        for follow_up in follow_ups:
            self._move_next_deferred_in(inputs, follow_up.major_release)

    def _write_back(
        self,
        inputs: Inputs,
        client: TrackerClient,
        plan: ticket_plan.TicketPlan,
        state: RolloutState,
    ) -> None:
        """Fields, watchers (and status) in one PUT, then comments and replies; checkpointed.

        The PUT comes first so the new Cc groups get the comments' mail. A reply reopens a
        resolved ticket in RT, so when there is one, the last reply carries the status instead.
        RepositoryURL always mirrors where the bridge's record says the release is published.
        """
        ticket = inputs.ticket
        done = self.store.steps_done(inputs.job.id)
        status = "resolved" if plan.resolve else None
        status_by_reply = status if plan.replies else None
        if _WROTE_TICKET not in done:
            fields = dict(plan.fields)
            if ticket.field("RolloutProgress") != state.label:
                fields["RolloutProgress"] = state.label
            fields["RepositoryURL"] = self.repository.url_of(ticket.id) or ""
            spans = self.store.history(ticket.id)
            pending = state if state != inputs.came_from else None
            fields["RolloutHistory"] = ticket_plan.history_text(
                spans, self.store.clock(), pending=pending
            )
            client.update_ticket(
                ticket.id,
                custom_fields=fields,
                cc_groups=plan.cc,
                admin_cc_groups=plan.admin_cc,
                status=None if status_by_reply else status,
                owner=plan.owner if plan.owner != ticket.ticket.owner else None,
                current=ticket.ticket,
            )
            self.store.mark_step(inputs.job.id, _WROTE_TICKET, ", ".join(sorted(fields)))
        # One comment and one reply at most: each is an RT call (and a mail).
        if plan.comments and _COMMENTED not in done:
            text = "\n\n".join(plan.comments)
            client.comment(ticket.id, text)
            self.store.mark_step(inputs.job.id, _COMMENTED, text[:200])
        if plan.replies and _REPLIED not in done:
            text = "\n\n".join(plan.replies)
            client.reply(ticket.id, text, status=status_by_reply)
            self.store.mark_step(inputs.job.id, _REPLIED, text[:200])

    def _move_next_deferred_in(self, inputs: Inputs, major: str) -> None:
        """Queue the major release's oldest Deferred release into StageRollout, if the slot is
        free now (a change of the bridge's own)."""
        if self.store.slot_holders(major, excluding=inputs.ticket.id):
            return
        waiting = self.store.oldest_deferred(major)
        if waiting is None:
            return
        job = inputs.job
        # Negative "transaction" ids never collide with RT's.
        result = self.queue.enqueue_many(
            [
                records.ReleaseRequest(
                    ticket_id=waiting,
                    transaction_id=-job.id,
                    current=RolloutState.STAGE_ROLLOUT,
                    previous=RolloutState.DEFERRED,
                    actor=f"slot freed by #{inputs.ticket.id}",
                    source=records.JobSource.BRIDGE,
                )
            ]
        )
        self._event(
            events.EventKind.DEFERRED_PROMOTED,
            job,
            f"the {major} staged-rollout slot is free: queued #{waiting} (job "
            f"{result[0].job_id}) to move from Deferred into StageRollout",
        )


def workflow_processor(settings: settings_model.Settings, jobs: queue.Queue) -> WorkflowProcessor:
    """The processor of ``rollout daemon``: the release workflow, with its repository work on
    the configured trees."""
    store = releases.ReleaseStore(jobs.engine, clock=jobs.clock)
    work = repository_steps.RepositoryWork(settings, store, repository_steps.repository(settings))
    return WorkflowProcessor(
        settings, jobs, store, lambda: TrackerClient(settings.tracker), repository=work
    )
