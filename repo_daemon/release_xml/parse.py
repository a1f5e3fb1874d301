"""Reading a technology provider's release.xml into ``manifest.ReleaseInfo``.

Owns the size limit, safe parsing (no DOCTYPE at all, so no DTDs, entities or external
references; no network), validation against ``schemas/release.xsd``, the checks a schema
cannot make (names and paths safe to become directories, no duplicate paths), and the
comparison with the ticket's ReleaseType / AssociatedMajorRelease. Pure: bytes in, model out.
It does not fetch release.xml (the ticket side does) nor any package (``sync`` does); only
``validate_file`` reads a file, the one it is given.

Every problem is collected and reported together in one ``ReleaseInvalid``, each with its line
and element path, in words a technology provider can act on.

Over 500 lines: one job (one reader of one format), no seam found yet (issue 12).
"""

from __future__ import annotations

import codecs
import difflib
import functools
import hashlib
import logging
import re
import textwrap
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import xmlschema
from lxml import etree

import schemas
from repo_daemon import errors
from repo_daemon.release_xml import model as manifest

logger = logging.getLogger(__name__)

MAX_RELEASE_XML_BYTES = 1024 * 1024
"""A release.xml larger than this is refused before it is parsed."""
MAX_PROBLEMS = 1000
"""Checking stops after this many problems (a provider fixes those first)."""
MAX_LISTED_PROBLEMS = 100
"""At most this many problems are spelled out in the message (``problems`` keeps them all)."""
MAX_PATH_BYTES = 4096
MAX_COMPONENT_BYTES = 255
RELEASE_TYPES = ("Incremental", "NonIncremental")

DOCTYPE_REFUSED = "release.xml must not contain a DOCTYPE (DTDs and entities are not allowed)"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
SAFE_NAME_WORDS = (
    "1 to 64 letters, digits, '.', '_', '+' or '-', starting with a letter or digit"
    " (it becomes a directory name)"
)
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
# Hints for editors that validate; other xsi: attributes (type, nil) would change the checks.
_SCHEMA_HINTS = (f"{_XSI}noNamespaceSchemaLocation", f"{_XSI}schemaLocation")
# What may stand before the root element besides a DOCTYPE: white space, comments, PIs.
_PROLOG = re.compile(r"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_WHERE = re.compile(r"(?P<what>.*), line (?P<line>\d+), column (?P<column>\d+)", re.DOTALL)


class ReleaseInvalid(errors.DaemonError):
    """release.xml (or its agreement with the ticket) cannot be used; ``problems`` lists all.

    Permanent: the provider must send a corrected release.xml (or fix the ticket's fields).
    """

    transient = False

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


def release_sha256(data: bytes) -> str:
    """The SHA-256 (lower-case hex) of release.xml as received: what the bridge froze."""
    return hashlib.sha256(data).hexdigest()


def validate_file(path: Path) -> manifest.ReleaseInfo:
    """Read the release.xml at ``path`` (never more than the size limit) and parse it.

    Raises ``ReleaseInvalid``, also when the file cannot be read.
    """
    try:
        with path.open("rb") as f:
            data = f.read(MAX_RELEASE_XML_BYTES + 1)
            size = path.stat().st_size if len(data) > MAX_RELEASE_XML_BYTES else len(data)
    except OSError as exc:
        raise ReleaseInvalid([f"cannot read {path} ({exc.strerror})"], source=str(path)) from exc
    if size > MAX_RELEASE_XML_BYTES:
        raise ReleaseInvalid([_too_large(max(size, len(data)))], source=str(path))
    return parse_release(data, source=str(path))


def parse_release(data: bytes, *, source: str = "release.xml") -> manifest.ReleaseInfo:
    """Check release.xml completely and return the release it describes.

    In order: the size limit (nothing larger than ``MAX_RELEASE_XML_BYTES`` is parsed), no
    DOCTYPE, well-formed XML (parsed with entities, DTD loading and network off), root element
    ``Release``; then the schema and the checks beyond it, all problems collected together.
    ``source`` names the document in logs and on the error. Raises ``ReleaseInvalid``.
    """
    if len(data) > MAX_RELEASE_XML_BYTES:
        raise ReleaseInvalid([_too_large(len(data))], source=source)
    if not data.strip():
        raise ReleaseInvalid(["it is empty"], source=source)
    if _has_doctype(data):
        raise ReleaseInvalid([DOCTYPE_REFUSED], source=source)
    tree = _parse_xml(data, source)
    root = tree.getroot()
    if root.tag != "Release":
        raise ReleaseInvalid([_wrong_root(root)], source=source)

    problems = _Problems(tree)
    stopped = False
    try:
        decls = _check_structure(root, _schema().elements["Release"], problems)
        _check_values(tree, decls, problems)
        _check_beyond_schema(root, problems)
    except _TooMany:
        stopped = True
    if problems:
        logger.info("release refused", extra={"source": source, "problems": len(problems)})
        raise ReleaseInvalid(problems.sorted(), source=source, stopped=stopped)
    return _model(root)


def check_against_ticket(
    info: manifest.ReleaseInfo, *, release_type: str | None, major_release: str | None
) -> None:
    """Check release.xml's ReleaseType / MajorRelease against the ticket's fields.

    ``release_type`` is the ticket's ReleaseType, ``major_release`` its AssociatedMajorRelease
    (None or empty when unset). Each must be stated by at least one of the two, and where both
    state it they must agree. The ticket's major release must be safe as a directory name.
    The value to use is the ticket's when set, else release.xml's. Raises ``ReleaseInvalid``.
    """
    problems: list[str] = []
    ticket_type = (release_type or "").strip() or None
    ticket_major = (major_release or "").strip() or None
    if ticket_type is not None and ticket_type not in RELEASE_TYPES:
        problems.append(
            f"the ticket's ReleaseType is {_quote(ticket_type)}; it must be one of "
            + ", ".join(RELEASE_TYPES)
        )
    elif ticket_type and info.release_type and ticket_type != info.release_type:
        problems.append(
            f"release.xml says ReleaseType {info.release_type}, the ticket says {ticket_type}"
        )
    elif not ticket_type and not info.release_type:
        problems.append(
            "neither the ticket's ReleaseType field nor release.xml says the release type: "
            "set ReleaseType on the ticket to Incremental or NonIncremental"
        )
    if ticket_major is not None and not SAFE_NAME.fullmatch(ticket_major):
        problems.append(
            f"the ticket's AssociatedMajorRelease is {_quote(ticket_major)}; it must be "
            + SAFE_NAME_WORDS
        )
    elif ticket_major and info.major_release and ticket_major != info.major_release:
        problems.append(
            f"release.xml says MajorRelease {info.major_release}, "
            f"the ticket says {ticket_major} (AssociatedMajorRelease)"
        )
    elif not ticket_major and not info.major_release:
        problems.append(
            "neither the ticket's AssociatedMajorRelease field nor release.xml (MajorRelease) "
            "says the major release: set AssociatedMajorRelease on the ticket (e.g. UMD-5)"
        )
    if problems:
        raise ReleaseInvalid(problems)


def path_problems(path: str, *, directory: bool = False) -> list[str]:
    """What makes ``path`` unsafe as a relative path below the release's root (empty: none).

    ``directory`` allows the empty path (the root itself) and one trailing ``/``.
    """
    found: list[str] = []
    if directory and path.endswith("/") and path != "/":
        path = path[:-1]
    if not path:
        return [] if directory else ["is empty"]
    if path.startswith("/"):
        found.append("starts with '/' (it must be relative to the release's root)")
    if "\\" in path:
        found.append("contains a backslash (separate directories with '/')")
    if control := _CONTROL.search(path):
        found.append(f"contains a control character (U+{ord(control.group()):04X})")
    parts = path.split("/")
    if path.startswith("/"):
        parts = parts[1:]
    if ".." in parts:
        found.append("contains '..' (it must stay below the release's root)")
    if "." in parts:
        found.append("contains a '.' component")
    if "" in parts:
        found.append("has an empty component ('//' or a '/' at the end)")
    hidden = [p for p in parts if p.startswith(".") and p not in (".", "..")]
    if hidden:
        found.append(f"has a hidden component {_quote(hidden[0])} (starting with '.')")
    longest = max(len(p.encode()) for p in parts)
    if longest > MAX_COMPONENT_BYTES:
        found.append(f"has a component of {longest} bytes (at most {MAX_COMPONENT_BYTES})")
    if len(path.encode()) > MAX_PATH_BYTES:
        found.append(f"is {len(path.encode())} bytes long (at most {MAX_PATH_BYTES})")
    return found


# ---------------------------------------------------------------------------- parsing


def _too_large(size: int) -> str:
    return (
        f"it is {size} bytes ({size / 1024 / 1024:.2f} MiB); the limit is "
        f"{MAX_RELEASE_XML_BYTES} bytes ({MAX_RELEASE_XML_BYTES // 1024 // 1024} MiB)"
    )


def _has_doctype(data: bytes) -> bool:
    """Whether a DOCTYPE stands before the root element (looked at before libxml2 sees it)."""
    text = _decode_prolog(data)
    if text.startswith("\ufeff"):
        text = text[1:]
    end = _PROLOG.match(text)
    return text.startswith("<!DOCTYPE", end.end() if end else 0)


def _decode_prolog(data: bytes) -> str:
    # Only markup matters here, so any ASCII-compatible encoding reads as latin-1; UTF-16/32
    # are recognised by their BOM or by how '<' is written (XML 1.0, appendix F).
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (b"<\x00\x00\x00", "utf-32-le"),
        (b"\x00\x00\x00<", "utf-32-be"),
        (b"<\x00", "utf-16-le"),
        (b"\x00<", "utf-16-be"),
    ):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    return data.decode("latin-1")


def _parse_xml(data: bytes, source: str) -> Any:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        tree = etree.ElementTree(etree.fromstring(data, parser))
    except etree.XMLSyntaxError as exc:
        message = str(exc.msg or exc)
        if where := _WHERE.fullmatch(message):
            message = f"line {where['line']}, column {where['column']}: {where['what']}"
        raise ReleaseInvalid([f"it is not well-formed XML ({message})"], source=source) from exc
    except (ValueError, LookupError) as exc:  # e.g. an encoding libxml2 does not know
        raise ReleaseInvalid([f"it is not readable XML ({exc})"], source=source) from exc
    info = tree.docinfo
    # A second line of defence: whatever encoding hid a DOCTYPE from _has_doctype.
    if info.doctype or info.internalDTD is not None or info.system_url or info.public_id:
        raise ReleaseInvalid([DOCTYPE_REFUSED], source=source)
    return tree


def _wrong_root(root: Any) -> str:
    name = etree.QName(root)
    if name.localname == "Release":
        return (
            f"the root element <Release> is in the namespace {name.namespace!r}; "
            "release.xml uses no namespace (remove the xmlns attribute)"
        )
    return f"the root element is <{name.localname}>; a release.xml has <Release> as its root"


@functools.cache
def _schema() -> xmlschema.XMLSchema10:
    text = schemas.path("release.xsd").read_text(encoding="utf-8")
    return xmlschema.XMLSchema10(text, allow="none")


# ---------------------------------------------------------------------------- problems


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


class _TooMany(Exception):
    """Enough problems found: stop looking (a huge broken file must not take minutes)."""


class _Problems:
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
        """Record a problem; raises ``_TooMany`` when ``MAX_PROBLEMS`` are recorded."""
        path = self.paths.get(elem) or str(self._tree.getpath(elem))
        self._flagged.add(elem)
        self._within.add(elem)
        self._within.update(elem.iterancestors())
        self._found.append(_Problem(int(elem.sourceline or 0), path, text))
        if len(self._found) >= MAX_PROBLEMS:
            raise _TooMany

    def has(self, elem: Any) -> bool:
        return elem in self._flagged

    def has_within(self, elem: Any) -> bool:
        """Whether ``elem`` or an element below it has a problem."""
        return elem in self._within

    def __len__(self) -> int:
        return len(self._found)

    def sorted(self) -> list[str]:
        return [str(p) for p in sorted(self._found, key=lambda p: p.line)]


# ---------------------------------------------------------------------------- the schema


def _check_structure(elem: Any, decl: Any, problems: _Problems) -> dict[Any, Any]:
    """Children and attributes of ``elem`` and below against the schema; element → its decl.

    Done here rather than by xmlschema because xmlschema stops checking an element's
    children at the first unexpected one, and a provider should hear of every problem.
    """
    decls = {elem: decl}
    for attr in elem.attrib:
        if attr not in decl.attributes and attr not in _SCHEMA_HINTS:
            name = attr.replace(_XSI, "xsi:")
            problems.add(elem, f"unknown attribute {_quote(name)} (release.xml uses no attributes)")
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
            f"text {_quote(stray)} is not allowed here, only the elements " + ", ".join(allowed),
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


def _check_values(tree: Any, decls: dict[Any, Any], problems: _Problems) -> None:
    """Simple values against their schema types; the rest of xmlschema's verdict as is."""
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
                problems.add(elem, f"{_quote(value)} is not {expected}")
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


def _quote(value: str, limit: int = 60) -> str:
    """``value`` in quotes for a message: shortened, control characters made visible."""
    value = " ".join(value.split()) if len(value) > limit else value
    value = value if len(value) <= limit else value[: limit - 1] + "…"
    return "'" + _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value) + "'"


# ---------------------------------------------------------------------------- beyond the schema


def _check_beyond_schema(root: Any, problems: _Problems) -> None:
    """Names and paths safe on disk, no duplicates: what release.xsd cannot say."""
    for tag in ("DistributionShortName", "MajorRelease"):
        elem = root.find(tag)
        if elem is not None and not problems.has(elem):
            value = (elem.text or "").strip()
            if not SAFE_NAME.fullmatch(value):
                problems.add(elem, f"{_quote(value)} must be {SAFE_NAME_WORDS}")
    for elem in root.iterfind("Repositories/Repository/RelativePath"):
        if not problems.has(elem):
            _check_path(elem, problems, directory=True)
    identifiers = root.iterfind("Repositories/Repository/Identifier")
    _check_unique(identifiers, "identifier", "identifiers must differ in more than case", problems)
    paths = list(root.iterfind("Packages/Package/Path"))
    for elem in paths:
        if not problems.has(elem):
            _check_path(elem, problems, directory=False)
    _check_unique(paths, "path", "some file systems cannot tell them apart", problems)
    _check_file_not_directory(paths, problems)


def _check_path(elem: Any, problems: _Problems, *, directory: bool) -> None:
    value = (elem.text or "").strip()
    found = path_problems(value, directory=directory)
    if found:
        problems.add(elem, f"{_quote(value)} " + _and(found))


def _key(value: str) -> str:
    """Equal for values that a case-insensitive, normalising file system confuses."""
    return unicodedata.normalize("NFC", value).casefold()


def _check_unique(elems: Iterable[Any], what: str, why: str, problems: _Problems) -> None:
    first: dict[str, Any] = {}
    for elem in elems:
        if problems.has(elem):
            continue
        value = (elem.text or "").strip()
        key = _key(value)
        if key not in first:
            first[key] = elem
            continue
        other = first[key]
        other_value = (other.text or "").strip()
        owner = other.getparent()
        where = f"{owner.tag} on line {owner.sourceline}"
        if other_value == value:
            problems.add(elem, f"{_quote(value)} is also the {what} of the {where}")
        else:
            problems.add(
                elem,
                f"{_quote(value)} differs only in letter case from {_quote(other_value)}"
                f", the {what} of the {where} ({why})",
            )


def _check_file_not_directory(paths: list[Any], problems: _Problems) -> None:
    """A file's path must not also be a directory in another file's path."""
    valid = [e for e in paths if not problems.has(e)]
    directories: dict[str, Any] = {}
    for elem in valid:
        parts = _key((elem.text or "").strip()).split("/")
        for i in range(1, len(parts)):
            directories.setdefault("/".join(parts[:i]), elem)
    for elem in valid:
        value = (elem.text or "").strip()
        other = directories.get(_key(value))
        if other is not None:
            owner = other.getparent()
            problems.add(
                elem,
                f"{_quote(value)} is a file here but a directory in the path of the "
                f"{owner.tag} on line {owner.sourceline}",
            )


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ---------------------------------------------------------------------------- the model


def _model(root: Any) -> manifest.ReleaseInfo:
    def token(elem: Any, tag: str) -> str:
        found = elem.find(tag)
        return " ".join((found.text or "").split()) if found is not None else ""

    def optional(tag: str) -> str | None:
        return token(root, tag) or None

    def block(tag: str) -> str:
        return textwrap.dedent((root.find(tag).text or "").strip("\n")).strip()

    return manifest.ReleaseInfo(
        distribution_name=token(root, "DistributionName"),
        short_name=token(root, "DistributionShortName"),
        technology_provider=token(root, "TechnologyProvider"),
        contact=token(root, "Contact"),
        description=block("Description"),
        keywords=tuple(" ".join((k.text or "").split()) for k in root.iterfind("Keywords/*")),
        documentation_links=tuple(
            (link.text or "").strip() for link in root.iterfind("DocumentationLinks/*")
        ),
        iso_date=date.fromisoformat(token(root, "ISODate")),
        major_version=int(token(root, "MajorVersion")),
        minor_version=int(token(root, "MinorVersion")),
        revision_version=int(token(root, "RevisionVersion")),
        release_notes=block("ReleaseNotes"),
        change_log=block("ChangeLog"),
        synch_protocol=optional("SynchProtocol"),
        synch_url=optional("SynchURL"),
        release_type=optional("ReleaseType"),
        major_release=optional("MajorRelease"),
        repositories=tuple(
            manifest.RepositorySpec(
                identifier=token(repo, "Identifier"),
                name=token(repo, "Name"),
                type=token(repo, "Type"),
                relative_path=(repo.find("RelativePath").text or "").strip().removesuffix("/"),
            )
            for repo in root.iterfind("Repositories/Repository")
        ),
        packages=tuple(
            manifest.PackageFile(
                path=(package.find("Path").text or "").strip(),
                size=int(token(package, "Size")),
                sha256=token(package, "SHA256").lower(),
            )
            for package in root.iterfind("Packages/Package")
        ),
    )
