"""The release fields of a ticket that came by mail: ``Field: value`` lines read from the
provider's messages, and the one rule that decides what the bridge fills in at intake.

A mail cannot set RT custom fields, so a provider who mails a release gives
``Sync-URL``, ``Sync-Protocol``, ``AssociatedMajorRelease`` and ``ReleaseType`` as lines of the
mail's text, or in release.xml (``SynchURL``, ``SynchProtocol``, ``MajorRelease``,
``ReleaseType``). For each field, the first of these that says it wins:

1. the ticket, when a person gave the field there;
2. the newest of the requestors' messages with a line for it (the first such line of a
   message counts);
3. release.xml;
4. what the ticket holds (for a mailed ticket, RT's queue default, e.g. ``rsync``).

Everything read from a message is hostile input: only the four names are read, each value
is length-limited, checked like the ticket field it becomes (``Sync-URL`` by the sync's own
checks for its protocol) and never used as a path. A refused line is a problem for the
provider, never a value. Pure: strings in, a ``Filled`` out; the reading from RT is
``mail_intake``'s.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from repo_daemon.release_xml import model as release_model
from repo_daemon.release_xml import paths, report

FIELDS = ("Sync-URL", "Sync-Protocol", "AssociatedMajorRelease", "ReleaseType")
"""The ticket fields a mail may give, in the order they are reported."""
MAX_VALUE_CHARS = 2048
"""The longest value a line may give (Sync-URL's own limit)."""
MAX_LINES = 2000
"""Lines of one message looked at; a release's lines come first in any real mail."""
PROTOCOLS = ("rsync", "sftp", "https")
RELEASE_TYPES = ("Incremental", "NonIncremental")

_LINE = re.compile(
    r"[ \t]*(" + "|".join(re.escape(name) for name in FIELDS) + r")[ \t]*:(.*)", re.IGNORECASE
)
_CANONICAL = {name.lower(): name for name in FIELDS}

UrlCheck = Callable[[str, str], str | None]
"""(protocol, url) → why the URL is refused, or None when the sync would accept it."""


@dataclass(frozen=True, kw_only=True)
class Message:
    """A message of the ticket's requestors, oldest first: its transaction and text."""

    transaction_id: int
    text: str


@dataclass(frozen=True, kw_only=True)
class Line:
    """One ``Field: value`` line of a message, as written (value stripped)."""

    name: str  # canonical field name
    value: str
    transaction_id: int

    def source(self) -> str:
        return f"the mail of transaction #{self.transaction_id}"


@dataclass(frozen=True, kw_only=True)
class Filled:
    """What the bridge fills in on the ticket at intake, where each value came from, and
    what it refused (for the provider to fix)."""

    values: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    problems: tuple[str, ...] = ()  # refused lines and values: the intake fails on them
    notes: tuple[str, ...] = ()  # worth saying if the intake fails (e.g. no release.xml)

    def comment(self) -> str:
        """The comment that tells people what the bridge filled in, and from where."""
        parts = [
            f"{name} = {report.quote(self.values[name], 120)} (from {self.sources[name]})"
            for name in FIELDS
            if name in self.values
        ]
        return "Filled in by the bridge at intake: " + "; ".join(parts) + "."


NOTHING = Filled()


def read_lines(message: Message) -> tuple[dict[str, Line], list[str]]:
    """The field lines of one message (the first line for each field) and the problems of
    the lines that were refused.

    A line counts when it starts with a field name (any case) and a colon. Quoted lines
    (``>``) are skipped, reading stops at a signature (``-- ``), and only the first
    ``MAX_LINES`` lines are looked at. A value is refused when it is empty, longer than
    ``MAX_VALUE_CHARS`` or holds control or invisible characters.
    """
    found: dict[str, Line] = {}
    problems: list[str] = []
    for raw in message.text.splitlines()[:MAX_LINES]:
        if raw.rstrip() == "--" and raw.startswith("--"):
            break  # the signature separator "-- "
        if raw.lstrip().startswith(">"):
            continue
        match = _LINE.fullmatch(raw)
        if match is None:
            continue
        name = _CANONICAL[match.group(1).lower()]
        if name in found:
            continue
        value = match.group(2).strip()
        where = f"the line {name} in the mail of transaction #{message.transaction_id}"
        problem = _text_problem(value)
        if problem:
            problems.append(f"{where} was refused: {problem}")
            found[name] = Line(name=name, value="", transaction_id=message.transaction_id)
            continue
        found[name] = Line(name=name, value=value, transaction_id=message.transaction_id)
    return {k: v for k, v in found.items() if v.value}, problems


def release_xml_values(info: release_model.ReleaseInfo) -> dict[str, str]:
    """The fields release.xml states (already checked by its schema)."""
    values = {
        "Sync-URL": info.synch_url,
        "Sync-Protocol": info.synch_protocol,
        "AssociatedMajorRelease": info.major_release,
        "ReleaseType": info.release_type,
    }
    return {name: value for name, value in values.items() if value}


def decide(
    *,
    current: Mapping[str, str | None],
    given: frozenset[str],
    messages: Sequence[Message],
    release_xml: Mapping[str, str] | None,
    check_url: UrlCheck,
    notes: Sequence[str] = (),
) -> Filled:
    """Apply the rule (see the module) to each field.

    ``current`` is what the ticket holds, ``given`` the fields a person gave on it,
    ``messages`` the requestors' messages oldest first, ``release_xml`` what release.xml
    states (None when there is none or it cannot be read). Values equal to what the ticket
    holds are not filled in again.
    """
    problems: list[str] = []
    from_mail: dict[str, Line] = {}
    for message in messages:
        lines, refused = read_lines(message)
        problems.extend(refused)
        from_mail.update(lines)  # newer messages win
    chosen: dict[str, tuple[str, str]] = {}  # field -> (value, source)
    for name in FIELDS:
        if name in given:
            continue
        if name in from_mail:
            line = from_mail[name]
            value, problem = _field_problem(name, line.value)
            if problem:
                problems.append(f"{name} {report.quote(line.value)} in {line.source()}: {problem}")
            else:
                chosen[name] = (value, line.source())
        elif release_xml and name in release_xml:
            chosen[name] = (release_xml[name], "release.xml")
    protocol = (chosen.get("Sync-Protocol") or (current.get("Sync-Protocol") or "rsync", ""))[0]
    if "Sync-URL" in chosen:
        url, source = chosen["Sync-URL"]
        why = check_url(protocol, url)
        if why:
            problems.append(f"Sync-URL {report.quote(url)} in {source}: {why}")
            del chosen["Sync-URL"]
    values = {n: v for n, (v, _) in chosen.items() if v != (current.get(n) or "")}
    return Filled(
        values=MappingProxyType(values),
        sources=MappingProxyType({n: chosen[n][1] for n in values}),
        problems=tuple(problems),
        notes=tuple(notes),
    )


def _text_problem(value: str) -> str | None:
    if not value:
        return "it gives no value"
    if len(value) > MAX_VALUE_CHARS:
        return f"its value is longer than {MAX_VALUE_CHARS} characters"
    for char in value:
        if char != " " and unicodedata.category(char)[0] in "CZ":
            return f"its value holds a control or invisible character (U+{ord(char):04X})"
    return None


def _field_problem(name: str, value: str) -> tuple[str, str | None]:
    """The value as the field takes it, or why the field refuses it (Sync-URL is checked
    with its protocol, once that is known)."""
    if name == "Sync-Protocol":
        lowered = value.lower()
        if lowered in PROTOCOLS:
            return lowered, None
        return value, f"it must be one of {', '.join(PROTOCOLS)}"
    if name == "ReleaseType":
        for known in RELEASE_TYPES:
            if value.lower() == known.lower():
                return known, None
        return value, f"it must be one of {', '.join(RELEASE_TYPES)}"
    if name == "AssociatedMajorRelease":
        if paths.SAFE_NAME.fullmatch(value):
            return value, None
        return value, f"it must be {paths.SAFE_NAME_WORDS}"
    return value, None
