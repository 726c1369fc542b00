"""Every sample gets exactly its expected verdict: valid-* valid, invalid-CODE-* with CODE only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.composition import Gateway
from gateway.iso.input_source import InputSource
from gateway.iso.sample_check import check_samples
from tests.conftest import SAMPLES

ALL = sorted(SAMPLES.rglob("*.xml"))
FIRST_SET = (
    "head.001.001.02",
    "pacs.008.001.08",
    "pacs.003.001.08",
    "pacs.002.001.10",
    "pacs.004.001.09",
    "pacs.007.001.09",
    "camt.056.001.08",
    "camt.029.001.09",
    "remt.001.001.05",
    "camt.054.001.08",
    "camt.053.001.08",
    "admi.002.001.01",
    "admi.004.001.02",
    "admi.007.001.01",
)
INVALID_NAME = re.compile(r"invalid-([A-Z0-9]{4})-[a-z0-9-]+\.xml")


def test_samples_exist_for_every_message_of_the_first_set() -> None:
    for message in FIRST_SET:
        assert sorted((SAMPLES / message).glob("valid-*.xml")), message


@pytest.mark.parametrize("path", ALL, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_sample_gets_its_expected_verdict(gateway: Gateway, path: Path) -> None:
    verdict = gateway.validator.validate(InputSource.from_path(path))
    if path.name.startswith("valid-"):
        assert verdict.valid, verdict.problems
        assert verdict.message_type == path.parent.name
        return
    match = INVALID_NAME.fullmatch(path.name)
    assert match, f"invalid sample names its code: invalid-CODE-what.xml, not {path.name}"
    assert not verdict.valid
    assert {problem.code for problem in verdict.problems} == {match.group(1)}, verdict.problems
    for problem in verdict.problems:
        assert problem.line > 0 and problem.path.startswith("/") and problem.text


def test_every_business_type_has_a_valid_sample(gateway: Gateway) -> None:
    seen = set()
    for path in ALL:
        if path.name.startswith("valid-") and path.parent.name.startswith("pacs.00"):
            text = path.read_text(encoding="utf-8")
            seen.update(re.findall(r"<CtgyPurp>\s*<Prtry>([A-Z][0-9]{3})</Prtry>", text))
    assert {"A100", "E100", "C100", "B100", "B308", "F100", "D100"} <= seen


def test_every_rule_of_the_issue_has_an_invalid_sample() -> None:
    names = {path.name for path in ALL if path.name.startswith("invalid-")}
    expected_codes = {
        "AM18",
        "AM10",
        "FF06",
        "AM02",
        "AM03",
        "RC01",
        "RC08",
        "RC09",
        "RC10",
        "AM05",
        "MD01",
        "CH21",
        "CH16",
        "FF05",
        "FF01",
    }
    found = {INVALID_NAME.fullmatch(name).group(1) for name in names}  # type: ignore[union-attr]
    assert expected_codes <= found


def test_start_up_check_validates_and_decodes_every_valid_sample(gateway: Gateway) -> None:
    count = check_samples(SAMPLES, gateway.validator, gateway.codecs, gateway.settings.parser)
    decoding = [codec for codec in gateway.codecs if codec.definition.decode is not None]
    assert count == sum(
        len(list((SAMPLES / codec.message).glob("valid-*.xml"))) for codec in decoding
    )
