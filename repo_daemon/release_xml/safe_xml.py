"""Turning the untrusted bytes of a release.xml into an lxml tree, safely.

Owns the size limit (nothing larger is parsed), the refusal of any DOCTYPE (so no DTDs,
entities or external references), parsing with entities, DTD loading and network off, and the
root element ``Release``. Each refusal is one problem in a ``report.ReleaseInvalid``. It checks
nothing inside the document (``xsd`` and ``paths`` do) and reads no file.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from lxml import etree

from repo_daemon.release_xml import report

MAX_RELEASE_XML_BYTES = 1024 * 1024
"""A release.xml larger than this is refused before it is parsed."""

DOCTYPE_REFUSED = "release.xml must not contain a DOCTYPE (DTDs and entities are not allowed)"
# What may stand before the root element besides a DOCTYPE: white space, comments, PIs.
_PROLOG = re.compile(r"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)
_WHERE = re.compile(r"(?P<what>.*), line (?P<line>\d+), column (?P<column>\d+)", re.DOTALL)


def read_tree(data: bytes, source: str) -> Any:
    """The parsed tree of release.xml, whose root element is ``Release``.

    In order: the size limit (nothing larger than ``MAX_RELEASE_XML_BYTES`` is parsed), not
    empty, no DOCTYPE, well-formed XML (parsed with entities, DTD loading and network off),
    root element ``Release``. ``source`` names the document on the error. Raises
    ``report.ReleaseInvalid`` with the first of these that fails.
    """
    if len(data) > MAX_RELEASE_XML_BYTES:
        raise report.ReleaseInvalid([too_large(len(data))], source=source)
    if not data.strip():
        raise report.ReleaseInvalid(["it is empty"], source=source)
    if _has_doctype(data):
        raise report.ReleaseInvalid([DOCTYPE_REFUSED], source=source)
    tree = _parse_xml(data, source)
    root = tree.getroot()
    if root.tag != "Release":
        raise report.ReleaseInvalid([_wrong_root(root)], source=source)
    return tree


def too_large(size: int) -> str:
    """The problem of a release.xml of ``size`` bytes, above the limit."""
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
        raise report.ReleaseInvalid(
            [f"it is not well-formed XML ({message})"], source=source
        ) from exc
    except (ValueError, LookupError) as exc:  # e.g. an encoding libxml2 does not know
        raise report.ReleaseInvalid([f"it is not readable XML ({exc})"], source=source) from exc
    info = tree.docinfo
    # A second line of defence: whatever encoding hid a DOCTYPE from _has_doctype.
    if info.doctype or info.internalDTD is not None or info.system_url or info.public_id:
        raise report.ReleaseInvalid([DOCTYPE_REFUSED], source=source)
    return tree


def _wrong_root(root: Any) -> str:
    name = etree.QName(root)
    if name.localname == "Release":
        return (
            f"the root element <Release> is in the namespace {name.namespace!r}; "
            "release.xml uses no namespace (remove the xmlns attribute)"
        )
    return f"the root element is <{name.localname}>; a release.xml has <Release> as its root"
