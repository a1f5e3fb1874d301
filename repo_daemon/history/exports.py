"""The event log's exports: CSV that a spreadsheet cannot run, JSON Lines (``Event.as_dict``,
one event a line) and an Atom feed (RFC 4287, built with lxml).

Pure formatting of events it is given: it reads no database, knows no filters beyond the feed's
id and links it is handed, and never builds XML or CSV by pasting strings together.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TextIO

from lxml import etree

from bridge import printable
from bridge.store import events as eventlog

CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "at",
    "kind",
    "ticket_id",
    "seq",
    "actor",
    "cause",
    "transaction_id",
    "job_id",
    "detail",
    "data",
    "prev_hash",
    "hash",
)
# What makes a spreadsheet read a cell as a formula (or split it into one): OWASP's list.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
JSON_TYPE = "application/json"
JSONL_TYPE = "application/jsonl"
CSV_TYPE = "text/csv"
# Characters XML 1.0 cannot hold (controls, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def safe_cell(value: Any) -> str:
    """``value`` as a CSV cell no spreadsheet runs: text starting with ``= + - @``, a tab or a
    carriage return gets a leading ``'`` (shown as text, the value otherwise kept). Numbers
    are written as they are (a negative RT transaction id is a number, not a formula)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_row(event: eventlog.Event) -> list[str]:
    """One event as the cells of ``CSV_COLUMNS`` (``data`` as JSON, times in UTC with Z)."""
    record = event.as_dict()
    record["detail"] = event.detail
    record["data"] = json.dumps(record["data"], sort_keys=True, ensure_ascii=False)
    return [safe_cell(record[column]) for column in CSV_COLUMNS]


def write_csv(events: Iterable[eventlog.Event], out: TextIO, *, header: bool = True) -> int:
    """Write ``events`` as CSV rows (RFC 4180: quoted where needed, CRLF) to ``out``, after
    the header line when ``header``; returns how many events."""
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    count = 0
    for event in events:
        writer.writerow(csv_row(event))
        count += 1
    return count


def csv_text(events: Iterable[eventlog.Event], *, header: bool = True) -> str:
    """``write_csv`` into a string."""
    out = io.StringIO()
    write_csv(events, out, header=header)
    return out.getvalue()


def jsonl_lines(events: Iterable[eventlog.Event]) -> Iterator[str]:
    """One line of JSON per event (``Event.as_dict``), each ending with a newline."""
    for event in events:
        yield json.dumps(event.as_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"


def jsonl_text(events: Iterable[eventlog.Event]) -> str:
    """``jsonl_lines`` joined."""
    return "".join(jsonl_lines(events))


def feed_id(query: Iterable[tuple[str, str]]) -> str:
    """A permanent Atom id for the feed of a filter (``urn:uuid:``): the same filter (its query
    parameters, in any order) always has the same id."""
    canonical = "&".join(f"{k}={v}" for k, v in sorted(query))
    digest = hashlib.sha256(b"rollout-events?" + canonical.encode()).digest()
    return uuid.UUID(bytes=digest[:16], version=5).urn


def entry_id(event: eventlog.Event) -> str:
    """An event's permanent Atom id (``urn:uuid:``), from its chained hash."""
    return uuid.UUID(bytes=bytes.fromhex(event.hash)[:16], version=5).urn


def _xml(text: str) -> str:
    """``text`` with what XML cannot hold written as ``\\xNN`` / ``\\uNNNN``."""
    return _NOT_XML.sub(lambda m: ascii(m.group())[1:-1], text)


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds") + "Z"


def _title(event: eventlog.Event) -> str:
    where = f" #{event.ticket_id}" if event.ticket_id is not None else ""
    detail = f": {event.detail}" if event.detail else ""
    return f"{event.kind.value}{where}{detail}"


def atom_feed(
    events: Sequence[eventlog.Event],
    *,
    feed_id: str,
    title: str,
    updated: datetime,
    self_url: str | None = None,
    event_url: Callable[[eventlog.Event], str] | None = None,
    next_url: str | None = None,
) -> bytes:
    """An Atom feed of ``events``, newest first, as UTF-8 XML.

    Each entry has the event's permanent id (``entry_id``), its time as ``updated``, the
    actor as author, its kind and cause as categories, a link to the event in the API
    (``event_url``, when given) and the event as JSON in ``content``. ``updated`` is the
    feed's time when it holds no event (else the newest event's); ``self_url`` is where the
    feed is fetched from, ``next_url`` its next page (RFC 5005).
    """
    atom = f"{{{ATOM_NS}}}"
    feed = etree.Element(atom + "feed", nsmap={None: ATOM_NS})
    etree.SubElement(feed, atom + "id").text = feed_id
    etree.SubElement(feed, atom + "title").text = _xml(title)
    newest = max((e.at for e in events), default=updated)
    etree.SubElement(feed, atom + "updated").text = _time(newest)
    author = etree.SubElement(feed, atom + "author")
    etree.SubElement(author, atom + "name").text = eventlog.BRIDGE_ACTOR
    if self_url is not None:
        etree.SubElement(feed, atom + "link", rel="self", href=self_url, type=ATOM_TYPE)
    if next_url is not None:
        etree.SubElement(feed, atom + "link", rel="next", href=next_url, type=ATOM_TYPE)
    etree.SubElement(feed, atom + "generator").text = "Rollout bridge"
    for event in sorted(events, key=lambda e: e.id, reverse=True):
        entry = etree.SubElement(feed, atom + "entry")
        etree.SubElement(entry, atom + "id").text = entry_id(event)
        etree.SubElement(entry, atom + "title").text = _xml(printable.escape(_title(event)))
        etree.SubElement(entry, atom + "updated").text = _time(event.at)
        etree.SubElement(entry, atom + "published").text = _time(event.at)
        who = etree.SubElement(entry, atom + "author")
        etree.SubElement(who, atom + "name").text = _xml(
            printable.escape(event.actor or eventlog.BRIDGE_ACTOR)
        )
        etree.SubElement(entry, atom + "category", term=event.kind.value, label="kind")
        etree.SubElement(entry, atom + "category", term=event.cause.label, label="cause")
        if event_url is not None:
            etree.SubElement(
                entry, atom + "link", rel="alternate", href=event_url(event), type=JSON_TYPE
            )
        etree.SubElement(entry, atom + "summary").text = event.kind.description
        content = etree.SubElement(entry, atom + "content", type="text")
        content.text = _xml(json.dumps(event.as_dict(), ensure_ascii=False, sort_keys=True))
    return bytes(etree.tostring(feed, xml_declaration=True, encoding="UTF-8"))
