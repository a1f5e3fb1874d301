"""Checking a parsed release.xml against ``schemas/release.xsd``, every problem with its line
and element path.

Structure (unknown, repeated and missing elements, attributes, stray text) is checked here
against the schema's content models; simple values are checked by xmlschema and worded with
each type's ``xs:appinfo``; anything the schema library raises on a document becomes a listed
problem, never an exception. The schema is loaded once per process, opening nothing else. It
does not parse bytes (``safe_xml`` does) and knows nothing of paths on disk (``paths``).
"""

from __future__ import annotations

import difflib
import functools
from collections import Counter
from collections.abc import Iterable
from typing import Any

import xmlschema

import schemas
from bridge import printable
from repo_daemon.release_xml import report

_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
# Hints for editors that validate; other xsi: attributes (type, nil) would change the checks.
_SCHEMA_HINTS = (f"{_XSI}noNamespaceSchemaLocation", f"{_XSI}schemaLocation")


def check(tree: Any, problems: report.Problems) -> None:
    """Add to ``problems`` everything in ``tree`` that release.xsd does not allow.

    Structure first, then values (an element refused for its structure is not also refused
    for its value). Raises ``report.TooMany`` when ``problems`` is full.
    """
    decls = _check_structure(tree.getroot(), _schema().elements["Release"], problems)
    _check_values(tree, decls, problems)


@functools.cache
def _schema() -> xmlschema.XMLSchema10:
    text = schemas.path("release.xsd").read_text(encoding="utf-8")
    return xmlschema.XMLSchema10(text, allow="none")


def _check_structure(elem: Any, decl: Any, problems: report.Problems) -> dict[Any, Any]:
    """Children and attributes of ``elem`` and below against the schema; element → its decl.

    Done here rather than by xmlschema because xmlschema stops checking an element's
    children at the first unexpected one, and a provider should hear of every problem.
    """
    decls = {elem: decl}
    for attr in elem.attrib:
        if attr not in decl.attributes and attr not in _SCHEMA_HINTS:
            name = attr.replace(_XSI, "xsi:")
            problems.add(
                elem, f"unknown attribute {report.quote(name)} (release.xml uses no attributes)"
            )
    children = [c for c in elem if isinstance(c.tag, str)]
    _name_children(elem, children, problems.paths)
    if decl.type.is_simple() or decl.type.has_simple_content():
        if children:
            problems.add(elem, f"holds text only, but contains the element <{children[0].tag}>")
        return decls
    allowed = {e.name: e for e in decl.type.content.iter_elements()}
    stray = " ".join(" ".join(t for t in [elem.text, *(c.tail for c in children)] if t).split())
    if stray:
        problems.add(
            elem,
            f"text {report.quote(stray)} is not allowed here, only the elements "
            + ", ".join(allowed),
        )
    seen: Counter[str] = Counter()
    for child in children:
        if child.tag not in allowed:
            problems.add(child, _unknown(child.tag, elem.tag, allowed))
            continue
        seen[child.tag] += 1
        max_occurs = allowed[child.tag].max_occurs
        if max_occurs is not None and seen[child.tag] > max_occurs:
            problems.add(child, f"{child.tag} is given more than once ({elem.tag} takes one)")
            continue
        decls.update(_check_structure(child, allowed[child.tag], problems))
    for name, child_decl in allowed.items():
        if seen[name] < child_decl.min_occurs:
            more = " (at least one is required)" if child_decl.max_occurs is None else ""
            problems.add(elem, f"{name} is missing{more}")
    return decls


def _name_children(elem: Any, children: list[Any], paths: dict[Any, str]) -> None:
    """Record each child's path as lxml's getpath writes it: an index only among namesakes."""
    total = Counter(c.tag for c in children)
    index: Counter[str] = Counter()
    for child in children:
        index[child.tag] += 1
        step = f"{child.tag}[{index[child.tag]}]" if total[child.tag] > 1 else str(child.tag)
        paths[child] = f"{paths[elem]}/{step}"


def _unknown(tag: str, parent: str, allowed: Iterable[str]) -> str:
    names = list(allowed)
    by_case = {n.lower(): n for n in names}
    guess = by_case.get(tag.lower()) or next(
        iter(difflib.get_close_matches(tag, names, n=1, cutoff=0.75)), None
    )
    if guess:
        return f"unknown element {tag}; did you mean {guess}?"
    return f"unknown element {tag} ({parent} may contain: {', '.join(names)})"


def _check_values(tree: Any, decls: dict[Any, Any], problems: report.Problems) -> None:
    """Simple values against their schema types; the rest of xmlschema's verdict as is."""
    # xsi:type and xsi:nil would make xmlschema check against other types (an unknown one
    # raises); they are already refused as unknown attributes, so the values are checked
    # against the schema's own types.
    for elem in tree.iter():
        for attr in [a for a in elem.attrib if a.startswith(_XSI) and a not in _SCHEMA_HINTS]:
            del elem.attrib[attr]
    try:
        _check_each_value(tree, decls, problems)
    except report.TooMany:
        raise
    except Exception as exc:  # whatever the schema library raises on odd input
        root = tree.getroot()
        problems.add(
            root,
            "the schema check could not be completed on this document "
            f"({type(exc).__name__}: {printable.escape(str(exc))[:200]})",
        )


def _check_each_value(tree: Any, decls: dict[Any, Any], problems: report.Problems) -> None:
    resource = xmlschema.XMLResource(tree, allow="none")
    reported: set[Any] = set()
    for error in _schema().iter_errors(resource):
        elem = error.elem
        if elem is None or elem in reported or problems.has(elem):
            continue  # one problem per element; structure problems say it better
        reported.add(elem)
        decl = decls.get(elem)
        if decl is None:
            continue  # below an element already refused
        if decl.type.is_simple() or decl.type.has_simple_content():
            value = (elem.text or "").strip()
            expected = _expected(decl.type)
            if not value:
                problems.add(elem, f"is empty; it must be {expected}")
            else:
                problems.add(elem, f"{report.quote(value)} is not {expected}")
        elif not problems.has_within(elem):  # else xmlschema's view of a problem already told
            problems.add(elem, str(error.reason or error.message))


def _expected(xsd_type: Any) -> str:
    """The phrase in the type's xs:appinfo (see release.xsd), or the type's name."""
    annotation = xsd_type.annotation
    if annotation is not None:
        for info in annotation.appinfo:
            if info.text and info.text.strip():
                return " ".join(str(info.text).split())
    return f"a valid {xsd_type.local_name or 'value'}"
