"""The login checker's cache: one RT call per login per period (also for requests that arrive
together), positive and negative answers remembered, a token bucket on RT calls, stale answers
while RT is down, a bounded cache keyed without the password; and the group directory."""

from __future__ import annotations

import contextlib
import threading

import pytest

from repo_daemon.serving import credentials
from tests.support.access_fakes import Clock, make_checker


def test_a_person_gets_their_roles_and_teams() -> None:
    checker, _, _ = make_checker(Clock())
    qc = checker.person("qc1", "good-qc")
    assert qc is not None and qc.name == "qc1" and qc.roles == {"qc"} and not qc.teams
    ea = checker.person("ea1", "good-ea")
    assert ea is not None and ea.teams == {"early-adopters"} and not ea.roles
    assert checker.person("qc1", "wrong") is None


def test_one_rt_call_per_login_per_cache_period() -> None:
    clock = Clock()
    checker, logins, groups = make_checker(clock, cache_seconds=60.0)
    for _ in range(50):
        assert checker.person("qc1", "good-qc") is not None
        clock.now += 1.0  # 50 s: within one period
    assert len(logins.calls) == 1 and checker.login_calls["qc1"] == 1
    clock.now += 11.0  # past the period: asked again, once
    for _ in range(10):
        checker.person("qc1", "good-qc")
    assert len(logins.calls) == 2
    assert groups.reads == 1  # group members are read for everybody, not per person


def test_a_wrong_password_is_remembered_too_and_does_not_shadow_the_right_one() -> None:
    checker, logins, _ = make_checker(Clock())
    for _ in range(5):
        assert checker.person("qc1", "wrong") is None
    assert len(logins.calls) == 1
    assert checker.person("qc1", "good-qc") is not None
    assert len(logins.calls) == 2


def test_requests_arriving_together_make_one_rt_call() -> None:
    checker, logins, _ = make_checker(Clock())
    logins.gate = threading.Event()
    answers: list[object] = []
    threads = [
        threading.Thread(target=lambda: answers.append(checker.person("qc1", "good-qc")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    logins.gate.set()
    for thread in threads:
        thread.join(10)
    assert len(answers) == 8 and all(a is not None for a in answers)
    assert len(logins.calls) == 1


def test_rt_calls_are_bounded_by_a_token_bucket() -> None:
    clock = Clock()
    checker, logins, _ = make_checker(clock, rt_calls_per_second=2.0, rt_burst=3)
    outcomes = []
    for n in range(10):  # ten different (wrong) passwords at once: a guessing attack
        try:
            outcomes.append(checker.person("qc1", f"guess-{n}"))
        except credentials.CheckUnavailable:
            outcomes.append("503")
    assert len(logins.calls) == 3
    assert outcomes.count("503") == 7
    clock.now += 1.0  # two more tokens
    for n in range(10, 15):
        with contextlib.suppress(credentials.CheckUnavailable):
            checker.person("qc1", f"guess-{n}")
    assert len(logins.calls) == 5


def test_over_budget_a_remembered_person_is_answered_from_the_cache() -> None:
    clock = Clock()
    checker, logins, _ = make_checker(
        clock, cache_seconds=60.0, rt_calls_per_second=0.001, rt_burst=1
    )
    assert checker.person("qc1", "good-qc") is not None
    clock.now += 120.0  # expired, and the bucket is empty (0.12 tokens)
    assert checker.person("qc1", "good-qc") is not None
    assert len(logins.calls) == 1 and checker.stale_answers == 1


def test_when_rt_is_down_people_seen_keep_their_answer_within_the_stale_window() -> None:
    clock = Clock()
    checker, logins, groups = make_checker(
        clock, cache_seconds=60.0, stale_seconds=3600.0, groups_seconds=300.0
    )
    assert checker.person("qc1", "good-qc") is not None
    assert checker.person("qc1", "wrong") is None
    logins.down = groups.down = True
    clock.now += 1000.0  # every cache expired
    person = checker.person("qc1", "good-qc")
    assert person is not None and person.roles == {"qc"}
    assert checker.person("qc1", "wrong") is None  # still refused
    with pytest.raises(credentials.CheckUnavailable):
        checker.person("ea1", "good-ea")  # never seen: nothing to answer with
    # Within RT_RETRY_SECONDS RT is not asked again: an outage costs no call per request.
    calls = len(logins.calls)
    for _ in range(20):
        checker.person("qc1", "good-qc")
    assert len(logins.calls) == calls
    clock.now += 3600.0  # beyond the stale window
    with pytest.raises(credentials.CheckUnavailable):
        checker.person("qc1", "good-qc")


def test_rt_is_asked_again_after_an_outage() -> None:
    clock = Clock()
    checker, logins, _ = make_checker(clock, cache_seconds=10.0)
    checker.person("qc1", "good-qc")
    logins.down = True
    clock.now += 11.0
    assert checker.person("qc1", "good-qc") is not None  # stale
    logins.down = False
    clock.now += credentials.RT_RETRY_SECONDS
    assert checker.person("qc1", "good-qc") is not None
    assert len(logins.calls) == 3
    assert checker.stale_answers == 1


def test_the_cache_is_bounded_and_never_holds_a_password() -> None:
    checker, _, _ = make_checker(Clock(), cache_entries=5.0, rt_burst=100.0)
    for n in range(20):
        checker.person("qc1", f"guess-{n}")
    checker.person("qc1", "good-qc")
    assert len(checker._cache) == 5
    for key in checker._cache:
        assert b"good-qc" not in key and b"qc1" not in key
    assert "good-qc" not in repr(vars(checker))


def test_token_bucket() -> None:
    clock = Clock()
    bucket = credentials.TokenBucket(rate=1.0, burst=2, clock=clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 0.5
    assert not bucket.take()
    clock.now += 0.5
    assert bucket.take()
    clock.now += 100
    assert [bucket.take() for _ in range(3)] == [True, True, False]  # never beyond the burst
