"""How release.xml's problems are collected and told: ``ReleaseInvalid``, the collector that ties
each problem to its element's line and path, and ``quote`` for values in messages.

Every check of release.xml (``safe_xml``, ``xsd``, ``paths``, ``ticket_fields``) words its
problems through this module, so a provider reads them all in one form. It checks nothing
itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge import printable
from repo_daemon import errors

MAX_PROBLEMS = 1000
"""Checking stops after this many problems (a provider fixes those first)."""
MAX_LISTED_PROBLEMS = 100
"""At most this many problems are spelled out in the message (``problems`` keeps them all)."""


class ReleaseInvalid(errors.DaemonError):
    """release.xml (or its agreement with the ticket) cannot be used; ``problems`` lists all.

    Permanent: the provider must send a corrected release.xml (or fix the ticket's fields).
    """

    transient = False
    provider_can_fix = True

    def __init__(
        self, problems: list[str], *, source: str = "release.xml", stopped: bool = False
    ) -> None:
        self.problems = list(problems)
        self.source = source
        self.stopped = stopped  # checking stopped at MAX_PROBLEMS: there may be more
        listed = self.problems[:MAX_LISTED_PROBLEMS]
        lines = [f"  - {p}" for p in listed]
        if len(self.problems) > len(listed):
            lines.append(f"  … and {len(self.problems) - len(listed)} more problems")
        if stopped:
            lines.append(f"  … checking stopped after {len(self.problems)}; there may be more")
        super().__init__("release.xml is invalid:\n" + "\n".join(lines))


@dataclass(frozen=True)
class _Problem:
    line: int
    path: str
    text: str

    def __str__(self) -> str:
        return (
            f"line {self.line}, {self.path}: {self.text}"
            if self.line
            else f"{self.path}: {self.text}"
        )


class TooMany(Exception):
    """Enough problems found: stop looking (a huge broken file must not take minutes)."""


class Problems:
    """Problems found in one document, each tied to an element (its line and path).

    Element paths are those of lxml's ``getpath`` (``/Release/Packages/Package[2]/Path``),
    worked out once while walking the tree, since ``getpath`` counts siblings on every call.
    """

    def __init__(self, tree: Any) -> None:
        self._tree = tree
        self._found: list[_Problem] = []
        self._flagged: set[Any] = set()
        self._within: set[Any] = set()
        self.paths: dict[Any, str] = {tree.getroot(): "/" + str(tree.getroot().tag)}

    def add(self, elem: Any, text: str) -> None:
        """Record a problem; raises ``TooMany`` when ``MAX_PROBLEMS`` are recorded."""
        path = self.paths.get(elem) or str(self._tree.getpath(elem))
        self._flagged.add(elem)
        self._within.add(elem)
        self._within.update(elem.iterancestors())
        self._found.append(_Problem(int(elem.sourceline or 0), path, text))
        if len(self._found) >= MAX_PROBLEMS:
            raise TooMany

    def has(self, elem: Any) -> bool:
        return elem in self._flagged

    def has_within(self, elem: Any) -> bool:
        """Whether ``elem`` or an element below it has a problem."""
        return elem in self._within

    def __len__(self) -> int:
        return len(self._found)

    def sorted(self) -> list[str]:
        return [str(p) for p in sorted(self._found, key=lambda p: p.line)]


def quote(value: str, limit: int = 60) -> str:
    """``value`` in quotes for a message: shortened, every character that would not show as
    itself escaped (``bridge.printable.escape``)."""
    value = " ".join(value.split()) if len(value) > limit else value
    value = value if len(value) <= limit else value[: limit - 1] + "…"
    return "'" + printable.escape(value) + "'"
