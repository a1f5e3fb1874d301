"""The shipped release.xsd: a valid schema for two independent XSD engines (xmlschema and
libxml2, which providers use through xmllint), documented throughout, and the docs' example
is the valid fixture and passes every check."""

from __future__ import annotations

import re

import pytest
import xmlschema
from lxml import etree

import schemas
from repo_daemon.release_xml import parse as release_xml_parse
from tests.support import paths

ROOT = paths.ROOT
FIXTURES = ROOT / "fixtures"
XS = "{http://www.w3.org/2001/XMLSchema}"
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _xsd() -> bytes:
    return schemas.path("release.xsd").read_bytes()


def test_the_schema_ships_as_package_data() -> None:
    assert schemas.path("release.xsd").is_file()
    assert "schemas = *.xsd" in (ROOT / "setup.cfg").read_text(encoding="utf-8")


def test_xmlschema_builds_the_schema_strictly() -> None:
    schema = xmlschema.XMLSchema10(_xsd().decode(), validation="strict", allow="none")
    assert schema.built
    assert schema.target_namespace == ""
    # allow="none": the schema opens nothing, not even a local file given by name
    with pytest.raises(xmlschema.XMLResourceError):
        schema.is_valid(str(FIXTURES / "release_valid.xml"))
    assert schema.is_valid(etree.parse(str(FIXTURES / "release_valid.xml"), SAFE_PARSER))


def test_libxml2_builds_the_schema_and_agrees() -> None:
    schema = etree.XMLSchema(etree.fromstring(_xsd(), SAFE_PARSER))
    valid = etree.parse(str(FIXTURES / "release_valid.xml"), SAFE_PARSER)
    assert schema.validate(valid), schema.error_log
    for case in (
        "missing_version",
        "wrong_type",
        "unknown_element",
        "bad_checksum_format",
        "bad_short_name",
        "wrong_root",
    ):
        doc = etree.parse(str(FIXTURES / f"release_{case}.xml"), SAFE_PARSER)
        assert not schema.validate(doc), case


def test_every_element_and_type_is_documented() -> None:
    tree = etree.fromstring(_xsd(), SAFE_PARSER)
    undocumented = [
        node.get("name")
        for node in tree.iter(f"{XS}element", f"{XS}simpleType", f"{XS}complexType")
        if node.get("name")
        and not (node.findtext(f"{XS}annotation/{XS}documentation") or "").strip()
        and node.get("type") not in {"Repository", "Package"}  # documented on their type
    ]
    assert undocumented == []
    # Each simple type carries the phrase the bridge's messages use ("'x' is not <phrase>").
    phraseless = [
        node.get("name")
        for node in tree.iter(f"{XS}simpleType")
        if not (node.findtext(f"{XS}annotation/{XS}appinfo") or "").strip()
    ]
    assert phraseless == []


def test_the_docs_example_is_the_valid_fixture_and_parses() -> None:
    doc = (ROOT / "docs" / "release-xml.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```xml\n(.*?)```", doc, flags=re.DOTALL)
    assert len(blocks) == 1
    assert blocks[0] == (FIXTURES / "release_valid.xml").read_text(encoding="utf-8")
    info = release_xml_parse.parse_release(blocks[0].encode())
    assert (info.short_name, info.version, len(info.packages)) == ("arc-ce", "7.1.2", 4)


def test_validate_file_on_the_shipped_fixture() -> None:
    info = release_xml_parse.validate_file(FIXTURES / "release_valid.xml")
    assert info.total_size == 3453638
