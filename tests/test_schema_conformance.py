"""Our usage-guideline schemas restrict the official ones: every valid sample (and every
document the gateway emits) is valid under the official ISO 20022 schema of the same id."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import OFFICIAL_SCHEMAS, PROJECT, SAMPLES

HEAD = "urn:iso:std:iso:20022:tech:xsd:head.001.001.02"
ENVELOPE = "urn:isogw:xsd:envelope.001.01"
VALID = sorted(SAMPLES.rglob("valid-*.xml"))


@cache
def official(message: str) -> etree.XMLSchema:
    path = OFFICIAL_SCHEMAS / f"{message}.xsd"
    assert path.is_file(), (
        f"official schema missing: {path} (../shared must sit beside the project)"
    )
    return etree.XMLSchema(etree.parse(str(path)))


def parts(path: Path) -> list[etree._Element]:
    root = etree.parse(str(path)).getroot()
    return list(root) if root.tag == f"{{{ENVELOPE}}}Message" else [root]


@pytest.mark.parametrize("path", VALID, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_valid_sample_is_valid_under_the_official_schema(path: Path) -> None:
    for part in parts(path):
        message = etree.QName(part).namespace.rsplit(":", 1)[1]
        document = etree.ElementTree(part)
        schema = official(message)
        assert schema.validate(document), f"{message}: {schema.error_log}"


def test_every_product_schema_keeps_its_iso_namespace() -> None:
    for path in sorted((PROJECT / "xsd").glob("*.xsd")):
        root = etree.parse(str(path)).getroot()
        namespace = root.get("targetNamespace")
        if path.stem in ("envelope.001.01", "cheque.001.01"):
            assert namespace == f"urn:isogw:xsd:{path.stem}"
        else:
            assert namespace == f"urn:iso:std:iso:20022:tech:xsd:{path.stem}"
            assert (OFFICIAL_SCHEMAS / path.name).is_file()
