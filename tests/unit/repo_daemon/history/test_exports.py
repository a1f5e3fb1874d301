"""The exports parse back: CSV with the csv module (formula cells neutralised), JSON Lines with
json, Atom with a real feed parser (feedparser)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

import feedparser
import pytest

from bridge.store import event_chain
from bridge.store import events as ev
from repo_daemon.history import exports

T0 = datetime(2026, 5, 4, 8, 0, 0)


def _events() -> list[ev.Event]:
    """Three chained events; the second's detail and actor are formula attacks."""
    out: list[ev.Event] = []
    previous = event_chain.GENESIS
    specs = [
        (ev.EventKind.JOB_QUEUED, 4242, "alice", {"detail": "queued: Unverified", "field": "x"}),
        (
            ev.EventKind.TICKET_TOLD,
            4242,
            '=HYPERLINK("http://evil")',
            {"detail": "=1+2", "comment": "@SUM(A1)", "to": ["-cmd|' /C calc'!A0"]},
        ),
        (
            ev.EventKind.HOOK_REFUSED,
            None,
            "",
            {"detail": "bad \x1b[31msignature\r", "http_status": 401},
        ),
    ]
    for n, (kind, ticket, actor, data) in enumerate(specs, start=1):
        at = T0 + timedelta(minutes=n)
        row = {
            "id": n, "at": at, "kind": kind.value, "ticket_id": ticket,
            "seq": n if ticket else None, "actor": actor, "cause": "hook",
            "transaction_id": -5 if n == 2 else 100 + n, "job_id": 7,
            "data": event_chain.canonical_data(data), "prev_hash": previous,
        }  # fmt: skip
        digest = event_chain.hash_of_row(row)
        out.append(
            ev.Event(
                id=n,
                at=at,
                kind=kind,
                ticket_id=ticket,
                seq=row["seq"],
                actor=actor,
                cause=ev.Cause.HOOK,
                transaction_id=row["transaction_id"],
                job_id=7,
                data=data,
                prev_hash=previous,
                hash=digest,
            )
        )
        previous = digest
    return out


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+41 22 767 61 11", "'+41 22 767 61 11"),
        ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("plain text", "plain text"),
        ("a=1", "a=1"),  # only the first character makes a formula
        ("", ""),
        (None, ""),
        (-5, "-5"),  # a number is a number (the bridge's own RT transactions are negative)
        (3, "3"),
        (True, "true"),
    ],
)
def test_safe_cell_neutralises_what_a_spreadsheet_would_run(value: object, cell: str) -> None:
    assert exports.safe_cell(value) == cell


def test_csv_parses_back_with_the_formula_cells_neutralised() -> None:
    events = _events()
    text = exports.csv_text(events)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [int(r["id"]) for r in rows] == [1, 2, 3]
    assert list(rows[0]) == list(exports.CSV_COLUMNS)
    attack = rows[1]
    assert attack["detail"] == "'=1+2"
    assert attack["actor"] == '\'=HYPERLINK("http://evil")'
    assert attack["transaction_id"] == "-5"
    assert json.loads(attack["data"])["to"] == ["-cmd|' /C calc'!A0"]  # inside JSON: harmless
    assert rows[2]["detail"] == "bad \x1b[31msignature\r"  # quoted, kept whole
    assert rows[2]["ticket_id"] == "" and rows[0]["at"] == "2026-05-04T08:01:00.000000Z"
    # No cell of any row starts with a formula character, numbers aside.
    for row in rows:
        cells = [v for v in row.values() if not v.lstrip("-").isdigit()]
        assert not any(v.startswith(exports.FORMULA_STARTS) for v in cells)


def test_json_lines_parse_back_as_the_events_own_dicts() -> None:
    events = _events()
    lines = exports.jsonl_text(events).splitlines()
    assert [json.loads(line) for line in lines] == [e.as_dict() for e in events]


def test_the_atom_feed_parses_with_feedparser() -> None:
    events = _events()
    feed = exports.atom_feed(
        events,
        feed_id=exports.feed_id([("kind", "job_queued")]),
        title="Rollout events (kind=job_queued)",
        self_url="https://bridge.example.org/api/events?format=atom",
        event_url=lambda e: f"https://bridge.example.org/api/events?after={e.id - 1}&limit=1",
        updated=T0,
        next_url="https://bridge.example.org/api/events?format=atom&after=3",
    )
    parsed = feedparser.parse(feed)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "Rollout events (kind=job_queued)"
    assert parsed.feed.id == exports.feed_id([("kind", "job_queued")])
    links = {link.rel: link.href for link in parsed.feed.links}
    assert links["next"].endswith("after=3") and links["self"].endswith("format=atom")
    entries = parsed.entries
    assert [e.id for e in entries] == [exports.entry_id(e) for e in reversed(events)]
    newest = entries[0]
    assert newest.updated == "2026-05-04T08:03:00Z"
    (link,) = newest.links
    assert (link.rel, link.type) == ("alternate", "application/json")
    assert link.href == "https://bridge.example.org/api/events?after=2&limit=1"
    assert newest.title == "hook_refused: bad \\x1b[31msignature\\r"  # escaped, one line
    assert json.loads(entries[1].content[0].value)["data"]["detail"] == "=1+2"
    assert entries[1].author == '=HYPERLINK("http://evil")'
    assert {t.term for t in entries[2].tags} == {"job_queued", "hook"}


def test_an_empty_feed_is_valid_and_dated() -> None:
    parsed = feedparser.parse(
        exports.atom_feed((), feed_id=exports.feed_id([]), title="Rollout events", updated=T0)
    )
    assert not parsed.bozo and parsed.entries == []
    assert parsed.feed.updated == "2026-05-04T08:00:00Z"


def test_feed_ids_depend_on_the_filter_not_the_order_of_parameters() -> None:
    a = exports.feed_id([("kind", "job_dead"), ("actor", "bob")])
    assert a == exports.feed_id([("actor", "bob"), ("kind", "job_dead")])
    assert a != exports.feed_id([("kind", "job_dead")])
    assert a.startswith("urn:uuid:")
