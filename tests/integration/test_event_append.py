"""``event_log.append`` looks up the head, each ticket's last sequence number and its major
release in one statement per 250 tickets (issue 16, benchmarks/events.py): a group commit of
many tickets still numbers each ticket's events from where it was, takes each release's major
release, and chains on from the head — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from bridge import records
from bridge.records import RolloutState as S
from bridge.store import chain_check, queue, releases, tables

TICKETS = 600  # more than one look-up's worth (250)


def _request(ticket: int, transaction: int) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=ticket, transaction_id=transaction, current=S.UNVERIFIED,
        previous=S.SUBMITTED, actor="alice",
    )  # fmt: skip


def test_a_group_commit_of_many_tickets_numbers_each_from_its_own_last_event(
    make_queue: Callable[..., queue.Queue],
) -> None:
    jobs = make_queue()
    store = releases.ReleaseStore(jobs.engine)
    # Ticket 3 is known (a release of UMD-4 with one event), the others are new.
    store.ensure(3, state=S.SUBMITTED, major_release="UMD-4", emergency=False)

    jobs.enqueue_many([_request(t, 1000 + t) for t in range(1, TICKETS + 1)])
    jobs.enqueue_many([_request(t, 5000 + t) for t in (1, 3, TICKETS)])

    log = tables.event_log
    with jobs.engine.connect() as conn:
        rows = conn.execute(
            sa.select(log.c.ticket_id, log.c.seq, log.c.major_release, log.c.kind).order_by(
                log.c.id
            )
        ).all()
    seqs: dict[int, list[int]] = {}
    for ticket, seq, _, _ in rows:
        seqs.setdefault(int(ticket), []).append(int(seq))
    assert seqs[3] == [1, 2, 3]  # release_recorded, then one job_queued per batch
    assert seqs[1] == [1, 2] and seqs[TICKETS] == [1, 2]
    assert all(seqs[t] == [1] for t in range(2, TICKETS) if t != 3)
    majors = {int(t): m for t, _, m, kind in rows if kind == "job_queued"}
    assert majors[3] == "UMD-4" and majors[1] is None
    report = chain_check.verify(jobs.engine)
    assert report.broken is None and report.checked == TICKETS + 4
