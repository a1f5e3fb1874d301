"""The receiver's writers, on a fake queue: group commit (``inbox.Inbox``), capped refusal log."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, wait
from typing import Any, cast

import pytest
import sqlalchemy as sa

from bridge import records
from bridge.intake import inbox, waiters
from bridge.store import queue

DEADLINE = 10.0


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.001)


def request(transaction_id: int, ticket_id: int = 1) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=ticket_id,
        transaction_id=transaction_id,
        current=records.RolloutState.UNVERIFIED,
        previous=records.RolloutState.SUBMITTED,
    )


class FakeQueue:
    """Records each ``enqueue_many`` call; ``gate`` holds commits until the test opens it."""

    def __init__(self) -> None:
        self.engine = sa.create_engine("postgresql+psycopg://bridge:hunter2@db.invalid/x")
        self.calls: list[list[int]] = []
        self.known: dict[int, int] = {}
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_with: BaseException | None = None
        self.bad_transaction: int | None = None
        self.events: list[dict[str, Any]] = []

    def enqueue_many(self, requests: Sequence[records.ReleaseRequest]) -> list[queue.Enqueued]:
        self.entered.set()
        assert self.gate.wait(DEADLINE)
        self.calls.append([r.transaction_id for r in requests])
        if self.fail_with is not None:
            raise self.fail_with
        if self.bad_transaction in {r.transaction_id for r in requests}:
            raise sa.exc.DataError("INSERT …", {}, Exception("value out of range"))
        results = []
        for r in requests:
            created = r.transaction_id not in self.known
            self.known.setdefault(r.transaction_id, len(self.known) + 1)
            results.append(queue.Enqueued(job_id=self.known[r.transaction_id], created=created))
        return results

    def record_event(self, kind: str, **fields: Any) -> int:
        self.events.append({"kind": kind, **fields})
        return len(self.events)


@pytest.fixture
def fake() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def box(fake: FakeQueue) -> Iterator[inbox.Inbox]:
    writer = inbox.Inbox(cast(queue.Queue, fake), max_batch=100)
    writer.start()
    yield writer
    fake.gate.set()
    writer.close()


def test_concurrent_hooks_share_one_commit(fake: FakeQueue, box: inbox.Inbox) -> None:
    fake.gate.clear()
    first = box.submit(request(1))
    assert fake.entered.wait(DEADLINE)  # the writer is inside the first commit
    waiting = [box.submit(request(n)) for n in range(2, 12)]
    assert not any(f.done() for f in [first, *waiting])  # nobody answered before a commit
    fake.gate.set()
    assert not wait([first, *waiting], timeout=DEADLINE).not_done
    assert fake.calls == [[1], list(range(2, 12))]  # ten hooks, one transaction
    assert [f.result().job_id for f in waiting] == list(range(2, 12))
    assert box.commits == 2 and box.largest_batch == 10


def test_batches_are_capped(fake: FakeQueue) -> None:
    writer = inbox.Inbox(cast(queue.Queue, fake), max_batch=4)
    writer.start()
    fake.gate.clear()
    futures = [writer.submit(request(0))]
    assert fake.entered.wait(DEADLINE)
    futures += [writer.submit(request(n)) for n in range(1, 10)]
    fake.gate.set()
    assert not wait(futures, timeout=DEADLINE).not_done
    writer.close()
    assert fake.calls == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]


def test_duplicate_in_the_same_batch(fake: FakeQueue, box: inbox.Inbox) -> None:
    a, b = box.submit(request(7)), box.submit(request(7))
    assert a.result(DEADLINE).created is not b.result(DEADLINE).created
    assert a.result().job_id == b.result().job_id


def test_failed_commit_fails_every_hook_of_the_batch(fake: FakeQueue, box: inbox.Inbox) -> None:
    fake.fail_with = sa.exc.OperationalError(
        "INSERT …", {}, Exception("connection to server at db.invalid failed\nmore")
    )
    fake.gate.clear()
    futures = [box.submit(request(1))]
    assert fake.entered.wait(DEADLINE)
    futures += [box.submit(request(n)) for n in (2, 3)]
    fake.gate.set()
    for future in futures:
        with pytest.raises(inbox.QueueUnavailable) as raised:
            future.result(DEADLINE)
        assert str(raised.value) == (
            "the queue database is unavailable "
            "(Exception: connection to server at db.invalid failed)"
        )
    # The database is back: the next hook is stored.
    fake.fail_with = None
    assert box.submit(request(4)).result(DEADLINE).created


def test_one_unstorable_row_does_not_fail_the_others(fake: FakeQueue, box: inbox.Inbox) -> None:
    fake.bad_transaction = 3
    fake.gate.clear()
    futures = [box.submit(request(1))]
    assert fake.entered.wait(DEADLINE)
    futures += [box.submit(request(n)) for n in (2, 3, 4)]
    fake.gate.set()
    wait(futures, timeout=DEADLINE)
    assert futures[1].result().created and futures[3].result().created
    with pytest.raises(inbox.QueueUnavailable, match="could not be stored"):
        futures[2].result()
    assert fake.calls[1:] == [[2, 3, 4], [2], [3], [4]]


def test_close_commits_what_was_submitted(fake: FakeQueue) -> None:
    writer = inbox.Inbox(cast(queue.Queue, fake))
    writer.start()
    fake.gate.clear()
    futures = [writer.submit(request(n)) for n in range(1, 6)]
    assert fake.entered.wait(DEADLINE)
    closer = threading.Thread(target=writer.close)
    closer.start()
    until(lambda: not writer.running)
    with pytest.raises(inbox.InboxClosed):
        writer.submit(request(99))
    fake.gate.set()
    closer.join(DEADLINE)
    assert all(f.result(0).created for f in futures)
    assert sorted(n for call in fake.calls for n in call) == [1, 2, 3, 4, 5]


def test_close_answers_hooks_stuck_behind_a_hung_database(fake: FakeQueue) -> None:
    writer = inbox.Inbox(cast(queue.Queue, fake), max_batch=1)
    writer.start()
    fake.gate.clear()
    stuck = writer.submit(request(1))
    assert fake.entered.wait(DEADLINE)
    behind = writer.submit(request(2))
    writer.close(timeout=0.05)
    with pytest.raises(inbox.InboxClosed):
        behind.result(0)
    fake.gate.set()  # the database comes back: the hook in the commit still gets its answer
    assert stuck.result(DEADLINE).created


def test_not_started_refuses(fake: FakeQueue) -> None:
    with pytest.raises(inbox.InboxClosed, match="not taking hooks"):
        inbox.Inbox(cast(queue.Queue, fake)).submit(request(1))


def test_cancelled_before_commit_is_left_out(fake: FakeQueue, box: inbox.Inbox) -> None:
    fake.gate.clear()
    first = box.submit(request(1))
    assert fake.entered.wait(DEADLINE)
    gone = box.submit(request(2))
    kept = box.submit(request(3))
    assert gone.cancel()
    fake.gate.set()
    assert kept.result(DEADLINE).created and first.result(DEADLINE).created
    assert fake.calls == [[1], [3]]


def test_describe_hides_the_password(fake: FakeQueue) -> None:
    error = sa.exc.OperationalError("SELECT 1", {}, Exception("login hunter2 refused"))
    assert inbox.describe(error, fake.engine) == "Exception: login ******** refused"


# -- the refusal log ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_refusals_are_capped_per_second(fake: FakeQueue, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    recorder = inbox.RefusalRecorder(
        cast(queue.Queue, fake), signed_per_second=2, unsigned_per_second=1, clock=clock
    )
    recorder.start()

    def refuse(signed: bool, n: int) -> Future[int] | None:
        return recorder.record(
            signed=signed,
            ticket_id=n,
            transaction_id=None,
            http_status=422,
            reason=f"refusal {n}",
            caller="127.0.0.1; signed by RT",
            needs_comment=signed,
        )

    # Unsigned: a burst of 2 (twice the rate), then nothing until time passes.
    unsigned = [refuse(False, n) for n in range(10)]
    assert [f is not None for f in unsigned] == [True, True] + [False] * 8
    # Signed refusals have their own budget: a flood of forged calls cannot use it up.
    signed = [refuse(True, n) for n in range(100, 106)]
    assert [f is not None for f in signed] == [True] * 4 + [False] * 2
    clock.now += 1.0
    assert refuse(False, 50) is not None
    assert refuse(False, 51) is None
    recorded = [f for f in [*unsigned, *signed] if f is not None]
    assert all(f.result(DEADLINE) for f in recorded)
    recorder.close()
    assert recorder.recorded == 7
    assert recorder.dropped_total == 11
    assert "11 refused hooks were not recorded" in caplog.text
    assert [e["needs_comment"] for e in fake.events].count(True) == 4


def test_refusal_recording_failure_is_reported(fake: FakeQueue) -> None:
    def broken(kind: str, **fields: Any) -> int:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    fake.record_event = broken  # type: ignore[method-assign]
    recorder = inbox.RefusalRecorder(cast(queue.Queue, fake))
    recorder.start()
    future = recorder.record(
        signed=True,
        ticket_id=1,
        transaction_id=2,
        http_status=422,
        reason="x",
        caller="127.0.0.1; signed by RT",
        needs_comment=True,
    )
    assert future is not None
    with pytest.raises(sa.exc.OperationalError):
        future.result(DEADLINE)
    recorder.close()


# -- submit_async: the receiver's path ----------------------------------------------------------


def _settle_calls(loop: asyncio.AbstractEventLoop) -> list[int]:
    """Counts, per call of ``waiters.settle`` scheduled into ``loop``, how many waiters it
    resolves (other callbacks pass through uncounted)."""
    seen: list[int] = []
    original = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
        if callback is waiters.settle:
            seen.append(len(args[0]))
        return original(callback, *args, **kwargs)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    return seen


def test_async_waiters_of_one_commit_are_resolved_in_one_call_into_the_loop(
    fake: FakeQueue, box: inbox.Inbox
) -> None:
    async def main() -> tuple[list[queue.Enqueued], list[int]]:
        calls = _settle_calls(asyncio.get_running_loop())
        fake.gate.clear()
        first = box.submit_async(request(1))
        assert await asyncio.to_thread(fake.entered.wait, DEADLINE)
        rest = [box.submit_async(request(n)) for n in range(2, 7)]
        assert not any(w.done() for w in [first, *rest])  # nobody answered before a commit
        fake.gate.set()
        return list(await asyncio.wait_for(asyncio.gather(first, *rest), DEADLINE)), calls

    results, calls = asyncio.run(main())
    assert fake.calls == [[1], [2, 3, 4, 5, 6]]
    assert [r.job_id for r in results] == [1, 2, 3, 4, 5, 6]
    assert calls == [1, 5]  # one call into the loop per commit, not one per hook


def test_async_waiters_get_the_failure_of_their_commit(fake: FakeQueue, box: inbox.Inbox) -> None:
    fake.fail_with = sa.exc.OperationalError("INSERT …", {}, Exception("disk I/O error"))

    async def main() -> None:
        with pytest.raises(inbox.QueueUnavailable, match="disk I/O error"):
            await asyncio.wait_for(box.submit_async(request(1)), DEADLINE)

    asyncio.run(main())


def test_async_waiter_cancelled_still_has_its_hook_stored(
    fake: FakeQueue, box: inbox.Inbox
) -> None:
    async def main() -> queue.Enqueued:
        fake.gate.clear()
        first = box.submit_async(request(1))
        assert await asyncio.to_thread(fake.entered.wait, DEADLINE)
        gone = box.submit_async(request(2))
        gone.cancel()
        kept = box.submit_async(request(3))
        fake.gate.set()
        await asyncio.wait_for(first, DEADLINE)
        return await asyncio.wait_for(kept, DEADLINE)

    assert asyncio.run(main()).created
    assert fake.calls == [[1], [2, 3]]
