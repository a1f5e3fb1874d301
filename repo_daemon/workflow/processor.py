"""The workflow processor: turns one queued RolloutProgress change into the engine's decision
and carries it out — repository steps, the staged-rollout slot, and the write-back on the
ticket — then records the move and the time in state.

Per change it reads the ticket once, writes its fields, watchers and status in one call, and
adds one call per comment or reply. Steps are checkpointed on the job, so a retried job resumes
after what was done. A permanent failure sets the ticket to Failed with a comment a person can
act on; a transient one propagates to the runner (retried, then the dead letter, which
``gave_up`` turns into Failed too).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bridge import errors, records
from bridge.records import RolloutState
from bridge.settings import model as settings_model
from bridge.store import queue, releases
from bridge.tracker.client import TrackerClient
from repo_daemon import errors as daemon_errors
from repo_daemon.release_xml import model as manifest
from repo_daemon.workflow import engine, loader, model
from repo_daemon.workflow import repository_actions as repository
from repo_daemon.workflow import steps as work
from repo_daemon.workflow import ticket_plan as plans

logger = logging.getLogger(__name__)

ClientFactory = Callable[[], TrackerClient]
BRIDGE_ACTOR = "rollout-bridge"

# Actions that only add to the ticket plan: pure, so they run again on a resumed job.
PLAN_ACTIONS = frozenset(
    {
        "notify_watchers",
        "comment_deferred",
        "comment_outcome",
        "reply_provider",
        "comment_failure",
        "resolve_ticket",
        "set_repository_url",
    }
)


@dataclass
class _Context:
    job: records.Job
    ticket: records.Ticket
    release: releases.Release
    decision: engine.Decision
    facts: engine.Facts
    client: TrackerClient | None = None
    plan: plans.TicketPlan = field(default_factory=plans.TicketPlan)
    failure: str = ""
    info: manifest.ReleaseInfo | None = None  # the frozen release.xml, once read
    url: str | None = None  # where this transition put the release
    verified: bool = False  # the packages were verified during this attempt's sync


class WorkflowProcessor:
    """The processor ``rollout daemon`` uses: the release workflow against RT."""

    def __init__(
        self,
        settings: settings_model.Settings,
        jobs: queue.Queue,
        store: releases.ReleaseStore,
        client_factory: ClientFactory,
        *,
        definitions: Mapping[str, model.Definition] | None = None,
        repository_work: work.RepositoryWork | None = None,
    ) -> None:
        self.settings = settings
        # None: repository steps are recorded without touching files (tests of the workflow).
        self.work = repository_work
        self.queue = jobs
        self.store = store
        self._factory = client_factory
        self._local = threading.local()
        self._clients: list[TrackerClient] = []
        self._lock = threading.Lock()
        self.definitions = dict(
            definitions or {n: loader.load_template(n) for n in loader.TEMPLATES}
        )
        for name in {settings.workflow.default, *settings.workflow.per_major_release.values()}:
            if name not in self.definitions:
                raise model.WorkflowInvalid(name, [f"no workflow named {name!r} is loaded"])

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

    def _event(self, kind: str, job: records.Job, detail: str) -> None:
        self.queue.record_event(
            kind,
            ticket_id=job.ticket_id,
            transaction_id=job.request.transaction_id,
            job_id=job.id,
            detail=detail,
        )

    # -- processing -----------------------------------------------------------------------

    def process(self, job: records.Job) -> None:
        """Carry out one change. Raises transient errors for the runner to retry."""
        client = self._client()
        calls_before = client.total_round_trips()
        request = job.request
        tkt = client.get_ticket(job.ticket_id)
        major = tkt.field("AssociatedMajorRelease")
        emergency = (tkt.field("EmergencyRelease") or "No") == "Yes"
        release = self.store.ensure(
            tkt.id, state=request.previous, major_release=major, emergency=emergency
        )
        self.store.update_facts(tkt.id, major_release=major, emergency=emergency)
        if request.source is records.JobSource.BRIDGE and release.state != request.previous:
            self._event(
                "transition_stale",
                job,
                f"the automatic move {request.previous.label} → {request.current.label} no "
                f"longer applies: the release is {release.state.label}",
            )
            return
        definition = self.definitions[self.settings.workflow.workflow_for(major)]
        facts = engine.Facts(
            emergency=emergency,
            slot_holders=self.store.slot_holders(major, excluding=tkt.id) if major else (),
            failed_target=release.failed_target,
        )
        decision = engine.decide(definition, release.state, request.current, facts)
        ctx = _Context(
            job=job, ticket=tkt, release=release, decision=decision, facts=facts, client=client
        )
        if decision.outcome is engine.Outcome.STAY:
            self._event("transition_noop", job, decision.reason)
        elif decision.outcome is engine.Outcome.BLOCK:
            self._block(ctx, client)
        else:
            self._move(ctx, definition, client)
        calls = client.total_round_trips() - calls_before
        self._event(
            "rt_calls", job, f"{calls} RT calls for {request.previous.label} → "
            f"{request.current.label} ({decision.outcome.value})",
        )  # fmt: skip

    def gave_up(self, job: records.Job, message: str) -> None:
        """A dead-lettered job: set the ticket to Failed and say why, when RT answers."""
        client = self._client()
        tkt = client.get_ticket(job.ticket_id)
        major = tkt.field("AssociatedMajorRelease")
        release = self.store.ensure(
            tkt.id, state=job.request.previous, major_release=major, emergency=False
        )
        definition = self.definitions[self.settings.workflow.workflow_for(major)]
        decision = engine.decide(definition, release.state, job.request.current, engine.Facts())
        ctx = _Context(
            job=job, ticket=tkt, release=release, decision=decision, facts=engine.Facts()
        )
        self._fail(ctx, definition, client, f"it kept failing and was given up: {message}")

    def _block(self, ctx: _Context, client: TrackerClient) -> None:
        requested = ctx.job.request.current
        stays = ctx.decision.state
        if ctx.ticket.field("RolloutProgress") == requested.label:
            client.update_ticket(
                ctx.ticket.id,
                custom_fields={"RolloutProgress": stays.label},
                current=ctx.ticket,
            )
        client.comment(ctx.ticket.id, f"Blocked: {ctx.decision.reason}.")
        self._event("transition_blocked", ctx.job, ctx.decision.reason)

    def _move(self, ctx: _Context, definition: model.Definition, client: TrackerClient) -> None:
        done = self.store.steps_done(ctx.job.id)
        for action in ctx.decision.actions:
            if action in done and action not in PLAN_ACTIONS:
                continue
            try:
                detail = self._run_action(action, ctx)
            except (errors.BridgeError, daemon_errors.DaemonError) as exc:
                if exc.transient:
                    raise
                self._fail(ctx, definition, client, f"{action}: {exc}")
                return
            if action not in PLAN_ACTIONS:
                self.store.mark_step(ctx.job.id, action, detail)
        self._write_back(ctx, client, ctx.decision.state)
        self.store.move(
            ctx.ticket.id,
            ctx.decision.state,
            transaction_id=ctx.job.request.transaction_id,
            actor=ctx.job.request.actor,
        )
        self._event("transition_done", ctx.job, ctx.decision.reason)
        if "promote_next_deferred" in ctx.decision.actions:
            self._promote_next_deferred(ctx)

    def _fail(
        self, ctx: _Context, definition: model.Definition, client: TrackerClient, error: str
    ) -> None:
        current = ctx.release.state
        requested = ctx.job.request.current
        failure = engine.on_failure(definition, current, requested, error)
        ctx.plan = plans.TicketPlan()
        ctx.failure = failure.reason
        ctx.decision = failure
        for action in failure.actions:
            self._run_action(action, ctx)
        self._write_back(ctx, client, RolloutState.FAILED)
        self.store.move(
            ctx.ticket.id,
            RolloutState.FAILED,
            transaction_id=ctx.job.request.transaction_id,
            actor=BRIDGE_ACTOR,
            failed_target=requested,
        )
        self._event("transition_failed", ctx.job, failure.reason)

    def _write_back(self, ctx: _Context, client: TrackerClient, state: RolloutState) -> None:
        """Fields, watchers (and status) in one PUT, then comments and replies; checkpointed.

        The PUT comes first so the new Cc groups get the comments' mail. A reply reopens a
        resolved ticket in RT, so when there is one, the last reply carries the status instead.
        """
        plan = ctx.plan
        done = self.store.steps_done(ctx.job.id)
        status_by_reply = plan.status if plan.replies else None
        if "write_ticket" not in done:
            fields = dict(plan.fields)
            if ctx.ticket.field("RolloutProgress") != state.label:
                fields["RolloutProgress"] = state.label
            spans = self.store.history(ctx.ticket.id)
            pending = state if state != ctx.release.state else None
            fields["RolloutHistory"] = plans.history_text(
                spans, self.store.clock(), pending=pending
            )
            client.update_ticket(
                ctx.ticket.id,
                custom_fields=fields,
                cc_groups=plan.cc,
                admin_cc_groups=plan.admin_cc,
                status=None if status_by_reply else plan.status,
                current=ctx.ticket,
            )
            self.store.mark_step(ctx.job.id, "write_ticket", ", ".join(sorted(fields)))
        # One comment and one reply at most: each is an RT call (and a mail).
        if plan.comments and "comment" not in done:
            text = "\n\n".join(plan.comments)
            client.comment(ctx.ticket.id, text)
            self.store.mark_step(ctx.job.id, "comment", text[:200])
        if plan.replies and "reply" not in done:
            text = "\n\n".join(plan.replies)
            client.reply(ctx.ticket.id, text, status=status_by_reply)
            self.store.mark_step(ctx.job.id, "reply", text[:200])

    def _promote_next_deferred(self, ctx: _Context) -> None:
        major = ctx.release.major_release or ctx.ticket.field("AssociatedMajorRelease")
        if not major or self.store.slot_holders(major, excluding=ctx.ticket.id):
            return
        waiting = self.store.oldest_deferred(major)
        if waiting is None:
            return
        # A change of the bridge's own: negative "transaction" ids never collide with RT's.
        result = self.queue.enqueue_many(
            [
                records.ReleaseRequest(
                    ticket_id=waiting,
                    transaction_id=-ctx.job.id,
                    current=RolloutState.STAGE_ROLLOUT,
                    previous=RolloutState.DEFERRED,
                    actor=f"slot freed by #{ctx.ticket.id}",
                    source=records.JobSource.BRIDGE,
                )
            ]
        )
        self._event(
            "deferred_promoted",
            ctx.job,
            f"the {major} staged-rollout slot is free: queued #{waiting} (job "
            f"{result[0].job_id}) to move from Deferred into StageRollout",
        )

    # -- the actions ------------------------------------------------------------------------

    def _run_action(self, action: str, ctx: _Context) -> str:
        tkt, plan, release = ctx.ticket, ctx.plan, ctx.release
        state = ctx.decision.state
        major = release.major_release or tkt.field("AssociatedMajorRelease")
        if action == "check_fields":
            return repository.check_fields(tkt)
        if action in repository.REPOSITORY_ACTIONS:
            if self.work is None:
                return repository.record_only(action)
            return self._repository_action(action, ctx)
        if action == "take_stage_slot":
            if not major:
                raise daemon_errors.ProcessingFailed(
                    "the ticket has no AssociatedMajorRelease, so it has no staged-rollout slot",
                    transient=False,
                )
            if not self.store.take_slot(major, tkt.id, emergency=ctx.facts.emergency):
                # Another daemon took it since the decision: try again; it will defer.
                raise daemon_errors.ProcessingFailed(
                    f"the {major} staged-rollout slot was taken meanwhile", transient=True
                )
            return f"holds the {major} slot"
        if action == "free_stage_slot":
            freed = bool(major) and self.store.free_slot(major or "", tkt.id)
            return f"freed the {major} slot" if freed else "held no slot"
        if action == "promote_next_deferred":
            return "after the write-back"
        if action == "set_repository_url":
            if self.work is None:
                return "RepositoryURL: no repository configured"
            url = ctx.url or self.work.url_of(tkt.id) or ""
            plan.fields["RepositoryURL"] = url
            return f"RepositoryURL {url or '(cleared)'}"
        if action == "notify_watchers":
            plan.cc = self.settings.workflow.cc.get(state.label, ())
            plan.admin_cc = self.settings.workflow.admin_cc
            news = plans.STATE_NEWS.get(state, "")
            how = " (automatically)" if ctx.job.request.source is records.JobSource.BRIDGE else ""
            text = f"RolloutProgress: {release.state.label} → {state.label}{how}. {news}"
            if state == RolloutState.FAILED:
                text = f"RolloutProgress: {release.state.label} → Failed. {ctx.failure}."
            plan.comments.insert(0, text.strip())
            return "watchers set"
        if action == "comment_deferred":
            holders = ", ".join(f"#{t}" for t in ctx.facts.slot_holders) or "another release"
            plan.comments.append(
                f"Deferred: the {major} staged-rollout slot is held by {holders}. This release "
                "moves into StageRollout by itself, oldest first, when the slot frees."
            )
            return "deferral explained"
        if action == "comment_outcome":
            plan.comments.append(f"{state.label}: {plans.STATE_NEWS.get(state, '')}")
            return "outcome commented"
        if action == "reply_provider":
            if state == RolloutState.PRODUCTION:
                plan.replies.append(f"Your release {tkt.subject!r} is in production. Thank you.")
            else:
                plan.replies.append(
                    f"Your release {tkt.subject!r} is {state.label}. "
                    f"{plans.STATE_NEWS.get(state, '')} The comments on this ticket say why."
                )
            return "provider told"
        if action == "comment_failure":
            plan.comments.append(f"Processing failed: {ctx.failure}.")
            return "failure explained"
        if action == "resolve_ticket":
            plan.status = "resolved"
            return "resolved"
        raise daemon_errors.ProcessingFailed(f"no implementation of {{{action}}}", transient=False)

    def _repository_action(self, action: str, ctx: _Context) -> str:
        """Run one repository action through ``RepositoryWork``; keep its note and URL."""
        assert self.work is not None and ctx.client is not None
        tkt, done = ctx.ticket, self.work
        if action == "fetch_release":
            intake = "sync_packages" in ctx.decision.actions
            outcome = done.fetch_release(ctx.client, tkt, intake=intake)
        elif action == "regenerate_metadata":
            outcome = work.Outcome(detail="metadata is built in each snapshot before it goes live")
        elif action == "remove_release":
            outcome = done.remove_release(tkt)
            ctx.url = ""
        else:
            if ctx.info is None:
                ctx.info = done.info(tkt)
            info = ctx.info
            if action == "validate_release":
                outcome = work.Outcome(detail=f"valid: {info.short_name} {info.version}")
            elif action == "sync_packages":
                outcome = done.sync_packages(tkt, info)  # verifies every file as it goes
                ctx.verified = True
            elif action == "verify_packages" and ctx.verified:
                outcome = work.Outcome(detail="verified during the sync")
            elif action == "verify_packages":
                # The sync was checkpointed by an earlier attempt: check scratch again.
                outcome = done.verify_packages(tkt, info)
            elif action == "publish_unverified":
                outcome = done.publish_unverified(tkt, info)
            elif action in ("promote_to_stagerollout", "promote_to_production"):
                changed = done.fetch_release(ctx.client, tkt, intake=False)
                if changed.note:
                    ctx.plan.comments.append(changed.note)
                promote = getattr(done, action)
                outcome = promote(tkt, info)
            else:
                raise daemon_errors.ProcessingFailed(
                    f"no implementation of {{{action}}}", transient=False
                )
        if outcome.note:
            ctx.plan.comments.append(outcome.note)
        if outcome.url is not None:
            ctx.url = outcome.url
        return outcome.detail


def workflow_processor(settings: settings_model.Settings, jobs: queue.Queue) -> WorkflowProcessor:
    """The default processor of ``rollout daemon``: the release workflow, with its
    repository work on the configured trees."""
    store = releases.ReleaseStore(jobs.engine, clock=jobs.clock)
    repository_work = work.RepositoryWork(settings, store, work.repository(settings))
    return WorkflowProcessor(
        settings,
        jobs,
        store,
        lambda: TrackerClient(settings.tracker),
        repository_work=repository_work,
    )
