"""The workflow processor: one queued change of a ticket, in four steps.

1. **gather** — read the ticket once into a ``TicketView`` (with what a mailed release's
   intake fills in: ``mail_intake``), the bridge's record of the release, the early adopters
   that accepted it, the facts the guards look at, and the roles of the person who asked (their
   RT groups, looked up once per person and kept for ``gather_inputs.ROLE_CACHE_SECONDS``);
2. **decide** — a RolloutProgress move asks the pure engine (MOVE, STAY or BLOCK); a change of
   another field (EarlyAdopters, StageRollout Report, EmergencyRelease) or of the ticket's
   status is its own kind of job, decided by the handler the field has in ``field_changes``
   (a ticket closed by hand becomes the workflow's closing move);
3. **act** — run the row's actions by looking each name up in the registry
   (``workflow.actions``); handlers take the immutable ``Inputs`` and return effects;
4. **apply** — fold the effects into one ticket write-back (``write_back``: one PUT for fields,
   watchers and status, then one comment and one reply at most), record the move, the time in
   state and what the effects ask the bridge to keep (acceptances, the report's time), then run
   the follow-ups the effects asked for (moving the next Deferred release in).

Work with lasting results is checkpointed on the job, so a retried job resumes after what was
done; pure actions run again so the write-back is whole. A permanent failure sets the ticket to
Failed with a comment a person can act on; a transient one propagates to the runner (retried,
then the dead letter, which ``gave_up`` turns into Failed too). This module knows no action and
no field by name.

Gathering (the ticket, the record, the facts, the asker's roles and their cache) is in
``gather_inputs``, a base of the processor.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from bridge import errors, records
from bridge.records import RolloutState
from bridge.settings import model as settings_model
from bridge.store import early_adopters as acceptances
from bridge.store import event_log, events, queue, releases, text
from bridge.tracker.client import TrackerClient
from repo_daemon import errors as daemon_errors
from repo_daemon.workflow import (
    effects,
    engine,
    field_changes,
    gather_inputs,
    loader,
    mail_intake,
    model,
    move_events,
    ticket_plan,
    write_back,
)
from repo_daemon.workflow import records_apply as kept_records
from repo_daemon.workflow import steps as repository_steps
from repo_daemon.workflow.actions import REGISTRY
from repo_daemon.workflow.gather import Inputs, People
from repo_daemon.workflow.repository_actions import RepositorySteps, Services
from repo_daemon.workflow.write_back import WriteBack

logger = logging.getLogger(__name__)

ClientFactory = Callable[[], TrackerClient]
BRIDGE_ACTOR = events.BRIDGE_ACTOR


class FollowUps(Protocol):
    """What the processor needs of the queue: the event log, and queuing follow-ups
    (``queue.Queue``; ``bridge.testing.InMemoryQueue`` in tests)."""

    def record_event(
        self,
        kind: events.EventKind,
        *,
        ticket_id: int | None = None,
        transaction_id: int | None = None,
        job_id: int | None = None,
        detail: str = "",
        data: Mapping[str, object] | None = None,
    ) -> int: ...

    def enqueue_many(
        self,
        requests: Sequence[records.ReleaseRequest],
        *,
        cause: events.Cause | None = None,
    ) -> list[queue.Enqueued]: ...


class WorkflowProcessor(gather_inputs.InputGatherer):
    """The processor ``rollout daemon`` uses: the release workflow against RT."""

    def __init__(
        self,
        settings: settings_model.Settings,
        jobs: FollowUps,
        store: releases.ReleaseStore,
        client_factory: ClientFactory,
        *,
        repository: RepositorySteps,
        definitions: Mapping[str, model.Definition] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        adopters: acceptances.AcceptanceStore | None = None,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.queue = jobs
        self.store = store
        self.adopters = adopters or acceptances.AcceptanceStore(store.engine, clock=store.clock)
        self._records = kept_records.Records(releases=store, acceptances=self.adopters)
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

    def _event(self, kind: events.EventKind, job: records.Job, detail: str, **data: object) -> None:
        """An event that records no change of the bridge's tables (a move blocked, stale or
        with nothing to do, a count), in a transaction of its own."""
        self.queue.record_event(
            kind,
            ticket_id=job.ticket_id,
            transaction_id=job.request.transaction_id,
            job_id=job.id,
            detail=detail,
            data=data,
        )

    # -- processing -----------------------------------------------------------------------

    def process(self, job: records.Job) -> None:
        """Carry out one change: a RolloutProgress move through the engine, another field's
        change through its handler (``field_changes``). Raises transient errors for the runner
        to retry."""
        client = self._client()
        calls_before = client.total_round_trips()
        if job.request.is_move:
            outcome = self._process_move(job, client)
        else:
            outcome = self._process_change(job, client)
        calls = client.total_round_trips() - calls_before
        self._event(
            events.EventKind.RT_CALLS, job,
            f"{calls} RT calls for {job.request.describe()} ({outcome})",
            calls=calls, outcome=outcome,
        )  # fmt: skip

    def _process_move(self, job: records.Job, client: TrackerClient) -> str:
        request = job.request
        inputs, services = self._gather(job, client)
        if request.source is records.JobSource.BRIDGE and inputs.came_from != request.previous:
            self._event(
                events.EventKind.TRANSITION_STALE,
                job,
                f"the automatic move {request.previous.label} → {request.current.label} no "
                f"longer applies: the release is {inputs.came_from.label}",
                **{"from": inputs.came_from.label, "to": inputs.came_from.label,
                   "asked": request.current.label},
            )  # fmt: skip
            return "stale"
        outcome = inputs.decision.outcome
        if outcome is engine.Outcome.STAY:
            self._event(
                events.EventKind.TRANSITION_NOOP, job, inputs.decision.reason,
                **{"from": inputs.came_from.label, "to": inputs.came_from.label,
                   "asked": request.current.label},
            )  # fmt: skip
        elif outcome is engine.Outcome.BLOCK:
            self._block(inputs, client)
        else:
            self._move(inputs, services)
        return outcome.value

    def _process_change(self, job: records.Job, client: TrackerClient) -> str:
        """A change of another field (or of the status): its handler decides, the effects are
        applied once; a ticket closed by hand closes its release through the workflow."""
        inputs = self._gather_change(job, client)
        handling = field_changes.REGISTRY[job.request.field].handler(inputs)
        if handling.close_as is not None:
            # The move the workflow makes of it: as if the person had asked for close_as.
            asked = dataclasses.replace(
                job.request, current=handling.close_as, previous=inputs.release.state
            )
            moving, services = self._gather(
                dataclasses.replace(job, request=asked),
                client,
                ticket=inputs.ticket,
                check_roles=False,
            )
            if moving.decision.outcome is engine.Outcome.MOVE:
                self._move(moving, services, also=handling.effects)
                return "closed by hand"
            reason = f"the bridge cannot close the release as {handling.close_as.label}: "
            handling = dataclasses.replace(
                handling,
                detail=reason + moving.decision.reason,
                effects=(effects.Comment(text=f"The ticket was closed by hand, but {reason}"
                                         f"{moving.decision.reason}."),),
            )  # fmt: skip
        plan = ticket_plan.TicketPlan.from_effects(handling.effects)
        WriteBack(client, self.store, job_id=job.id, ticket=inputs.ticket.ticket, plan=plan).write(
            plan.fields
        )
        self._records.keep(inputs.ticket, plan.records)
        self._event(events.EventKind.FIELD_CHANGE_DONE, job, handling.detail)
        return "handled"

    def gave_up(self, job: records.Job, message: str) -> None:
        """A dead-lettered job: set the ticket to Failed and say why, when RT answers (a change
        of another field only says why: the release did not move)."""
        message = text.storable(message, None)
        if not job.request.is_move:
            self._client().comment(
                job.ticket_id,
                f"The bridge gave up on a change ({job.request.describe()}, by "
                f"{job.request.actor or 'someone'}): {message}. An operator may retry it "
                f"(`rollout queue retry {job.id}`).",
            )
            return
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
        self._event(
            events.EventKind.TRANSITION_BLOCKED, inputs.job, inputs.decision.reason,
            **{"from": inputs.came_from.label, "to": stays.label, "asked": asked.label},
        )  # fmt: skip

    # -- act ------------------------------------------------------------------------------

    def _act(
        self, names: Sequence[str], inputs: Inputs, services: Services
    ) -> tuple[list[effects.Effect], list[dict[str, object]]]:
        """Run ``names`` in order through the registry; checkpoint lasting work (with its
        ``action_done`` event). Returns the effects and what each action did (name, outcome,
        seconds). Raises what a handler raises, naming the action on our own errors."""
        asked_for: list[effects.Effect] = []
        ran: list[dict[str, object]] = []
        for name in names:
            action = REGISTRY[name]  # the loader refuses names the registry does not know
            if name in inputs.checkpoints and not action.rerun_on_resume:
                ran.append({"name": name, "outcome": "done before", "seconds": 0.0})
                continue
            started = self._monotonic()
            try:
                result = action.handler(inputs, services)
            except (errors.BridgeError, daemon_errors.DaemonError) as exc:
                exc.failed_action = exc.failed_action or name
                raise
            seconds = round(self._monotonic() - started, 3)
            if action.checkpointed:
                done = event_log.draft(
                    events.EventKind.ACTION_DONE,
                    ticket_id=inputs.ticket.id,
                    job_id=inputs.job.id,
                    transaction_id=inputs.job.request.transaction_id,
                    data={"detail": f"{name}: {result.detail}" if result.detail else name,
                          "action": name, "seconds": seconds},
                )  # fmt: skip
                self.store.mark_step(inputs.job.id, name, result.detail, event=done)
            ran.append({"name": name, "outcome": "done", "seconds": seconds,
                        "detail": result.detail})  # fmt: skip
            asked_for.extend(result.effects)
        return asked_for, ran

    def _move(
        self, inputs: Inputs, services: Services, *, also: Sequence[effects.Effect] = ()
    ) -> None:
        """Run the decision's actions and apply their effects, after ``also`` (what a change
        of another field that led to this move says)."""
        try:
            done, ran = self._act(inputs.decision.actions, inputs, services)
        except (errors.BridgeError, daemon_errors.DaemonError) as exc:
            if exc.transient:
                raise
            for_provider = isinstance(exc, daemon_errors.DaemonError) and exc.provider_can_fix
            self._fail(inputs, services, str(exc), for_provider=for_provider,
                       action=exc.failed_action)  # fmt: skip
            return
        event = move_events.transition(
            events.EventKind.TRANSITION_DONE, inputs, inputs.decision.state, ran=ran
        )
        news = self._reached_production(inputs)
        follow_ups = self._apply(
            inputs, services, [*also, *done], inputs.decision.state, event=event, also=news
        )
        self._follow_up(inputs, follow_ups)

    def _reached_production(self, inputs: Inputs) -> tuple[event_log.Draft, ...]:
        """``release_reached_production`` for a move into Production (written with its
        ``transition_done``): where the release is now, as RepositoryURL shows it."""
        state = inputs.decision.state
        if state is not RolloutState.PRODUCTION or inputs.came_from is RolloutState.PRODUCTION:
            return ()
        found = self.store.get(inputs.ticket.id)
        area = found.repository_path if found is not None else None
        return (
            move_events.for_subscribers(
                events.EventKind.RELEASE_REACHED_PRODUCTION, inputs,
                f"reached Production in {area or '(no recorded area)'}",
                major_release=inputs.ticket.major_release, area=area,
                url=self.repository.url_of(inputs.ticket.id),
                emergency=inputs.ticket.emergency,
            ),
        )  # fmt: skip

    def _fail(
        self,
        inputs: Inputs,
        services: Services,
        error: str,
        *,
        for_provider: bool = False,
        action: str | None = None,
    ) -> None:
        # What the failure quotes (a provider's name that was not UTF-8) must not keep the
        # ticket, the records or the event log from taking it: escaped, never refused.
        error = text.storable(error, None)
        asked = inputs.job.request.current
        failure = engine.on_failure(
            inputs.definition, at=inputs.came_from, attempted=asked, error=error
        )
        failed = dataclasses.replace(
            inputs, decision=failure, failure=failure.reason, failure_for_provider=for_provider
        )
        # The failure actions only tell people (the loader keeps it so): nothing to undo.
        asked_for, ran = self._act(failure.actions, failed, services)
        event = move_events.transition(
            events.EventKind.TRANSITION_FAILED, failed, RolloutState.FAILED, ran=ran,
            actor=BRIDGE_ACTOR, error=error, failed_target=asked.label, action=action,
        )  # fmt: skip
        news = move_events.for_subscribers(
            events.EventKind.RELEASE_FAILED, failed, f"failed: {error}",
            actor=BRIDGE_ACTOR, failed_target=asked.label, error=error, action=action,
        )  # fmt: skip
        follow_ups = self._apply(
            failed, services, asked_for, RolloutState.FAILED, failed_target=asked, event=event,
            also=(news,),
        )  # fmt: skip
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
        event: event_log.Draft,
        also: Sequence[event_log.Draft] = (),
    ) -> tuple[effects.MoveNextDeferredIn, ...]:
        """The ticket write-back and the move in the bridge's records, with ``event`` and
        ``also`` in the move's transaction; returns the follow-ups to run once the move is
        recorded."""
        plan = ticket_plan.TicketPlan.from_effects(asked_for)
        self._write_back(inputs, services.tracker, plan, state)
        self._records.keep(inputs.ticket, plan.records)
        actor = BRIDGE_ACTOR if failed_target is not None else inputs.job.request.actor
        self.store.move(
            inputs.ticket.id,
            state,
            transaction_id=inputs.job.request.transaction_id,
            actor=actor,
            failed_target=failed_target,
            event=event,
            also=also,
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
        """Fields, watchers (and status) in one PUT, then comments and replies; checkpointed
        (``write_back``). RepositoryURL always mirrors where the bridge's record says the
        release is published; RolloutHistory shows its time in each state."""
        ticket = inputs.ticket
        fields = dict(plan.fields)
        if ticket.field("RolloutProgress") != state.label:
            fields["RolloutProgress"] = state.label
        fields["RepositoryURL"] = self.repository.url_of(ticket.id) or ""
        spans = self.store.history(ticket.id)
        pending = state if state != inputs.came_from else None
        fields["RolloutHistory"] = ticket_plan.history_text(
            spans, self.store.clock(), pending=pending
        )
        owner = plan.owner if plan.owner != ticket.ticket.owner else None
        phase = write_back.FAILURE_PHASE if state is RolloutState.FAILED else ""
        WriteBack(
            client, self.store, job_id=inputs.job.id, ticket=ticket.ticket, plan=plan, phase=phase
        ).write(fields, owner=owner)

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
            ],
            cause=events.Cause.SLOT_FREED,
        )
        self._event(
            events.EventKind.DEFERRED_PROMOTED,
            job,
            f"the {major} staged-rollout slot is free: queued #{waiting} (job "
            f"{result[0].job_id}) to move from Deferred into StageRollout",
            major_release=major,
            promoted=waiting,
            promoted_job=result[0].job_id,
        )


def workflow_processor(settings: settings_model.Settings, jobs: queue.Queue) -> WorkflowProcessor:
    """The processor of ``rollout daemon``: the release workflow, with its repository work on
    the configured trees."""
    store = releases.ReleaseStore(jobs.engine, clock=jobs.clock)
    work = repository_steps.RepositoryWork(settings, store, repository_steps.repository(settings))
    return WorkflowProcessor(
        settings, jobs, store, lambda: TrackerClient(settings.tracker), repository=work
    )
