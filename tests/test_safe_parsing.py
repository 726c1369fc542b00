"""Hostile or malformed input is refused with FF01, never parsed into something else."""

from __future__ import annotations

import pytest

from gateway.configuration.settings import ParserSettings, Settings
from gateway.iso.input_source import InputSource
from gateway.iso.pipeline import MessageValidator
from gateway.iso.rules.registry import RULES
from tests.conftest import Validate, codes, sample

CREDIT = "pacs.008.001.08/valid-A100-ordinary-credit.xml"


def only_problem(validate: Validate, data: bytes) -> tuple[str, str, int]:
    verdict = validate(data)
    assert len(verdict.problems) == 1, verdict.problems
    problem = verdict.problems[0]
    return problem.code, problem.text, problem.line


def test_external_entity_is_refused(validate: Validate) -> None:
    data = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<d>&x;</d>'
    )
    code, text, line = only_problem(validate, data)
    assert (code, line) == ("FF01", 2) and "DOCTYPE" in text


def test_billion_laughs_is_refused(validate: Validate) -> None:
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10)
    )
    data = f"<!DOCTYPE d [{entities}]><d>&l9;</d>".encode()
    assert only_problem(validate, data)[0] == "FF01"


@pytest.mark.parametrize("encoding", ["UTF-16", "UTF-7", "ISO-8859-1", "GB2312"])
def test_non_utf8_declarations_are_refused(validate: Validate, encoding: str) -> None:
    data = sample(CREDIT).replace(b'encoding="UTF-8"', f'encoding="{encoding}"'.encode(), 1)
    code, text, line = only_problem(validate, data)
    assert (code, line) == ("FF01", 1) and encoding in text


def test_utf16_byte_order_mark_is_refused(validate: Validate) -> None:
    data = sample(CREDIT).decode().replace('encoding="UTF-8"', "").encode("utf-16")
    code, text, _ = only_problem(validate, data)
    assert code == "FF01" and "UTF-8" in text


def test_utf8_byte_order_mark_is_accepted(validate: Validate) -> None:
    assert validate(b"\xef\xbb\xbf" + sample(CREDIT)).valid


def test_processing_instruction_in_the_body_is_refused(validate: Validate) -> None:
    data = sample(CREDIT).replace(b"<GrpHdr>", b"<?evil data?><GrpHdr>", 1)
    code, text, _ = only_problem(validate, data)
    assert code == "FF01" and "processing instruction" in text


def test_processing_instruction_in_the_prolog_is_refused(validate: Validate) -> None:
    data = sample(CREDIT).replace(b"?>\n", b"?>\n<?xml-stylesheet href='x'?>\n", 1)
    assert only_problem(validate, data)[0] == "FF01"


def test_comment_inside_a_value_is_refused(validate: Validate) -> None:
    # A comment splitting a bank code would make the parser see only "1041".
    data = sample(CREDIT).replace(
        b"<MmbId>104100000004</MmbId>", b"<MmbId>1041<!---->00000004</MmbId>", 1
    )
    code, text, _ = only_problem(validate, data)
    assert code == "FF01" and "comment inside a value" in text


def test_comment_between_elements_is_allowed(validate: Validate) -> None:
    data = sample(CREDIT).replace(b"<GrpHdr>", b"<!-- batch 7 --><GrpHdr>", 1)
    assert validate(data).valid


def test_not_well_formed_input_names_the_line(validate: Validate) -> None:
    data = sample(CREDIT).replace(b"</MsgId>", b"</MsgIdx>", 1)
    code, text, line = only_problem(validate, data)
    assert code == "FF01" and "not well-formed" in text and line > 1


@pytest.mark.parametrize("data", [b"", b"   \n", b"just text", b"<?xml version='1.0'?>"])
def test_empty_or_rootless_input_is_refused(validate: Validate, data: bytes) -> None:
    assert codes(validate(data)) == ["FF01"]


def test_unknown_document_is_refused(validate: Validate) -> None:
    data = b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.009.001.08"><x/></Document>'
    verdict = validate(data)
    assert codes(verdict) == ["FF01"]


def small_limits_validator(validator: MessageValidator, **limits: int) -> MessageValidator:
    settings = validator.settings
    parser = ParserSettings(**{**settings.parser.model_dump(), **limits})
    changed = Settings(**{**settings.model_dump(), "parser": parser})
    return MessageValidator(
        validator.schemas, validator.codecs, validator.directory, changed, RULES
    )


def test_input_over_the_size_limit_is_refused(gateway) -> None:  # type: ignore[no-untyped-def]
    validator = small_limits_validator(gateway.validator, max_message_bytes=5_000, tree_max_bytes=0)
    data = sample(CREDIT)
    assert len(data) > 5_000
    verdict = validator.validate(InputSource.from_bytes(data, "big"))
    assert codes(verdict) == ["FF01"] and "max_message_bytes" in verdict.problems[0].text


def test_too_many_elements_without_a_transaction_boundary_are_refused(gateway) -> None:  # type: ignore[no-untyped-def]
    validator = small_limits_validator(
        gateway.validator, max_elements_in_memory=5_000, read_chunk_bytes=4096, tree_max_bytes=0
    )
    flood = b"<Ustrd>x</Ustrd>" * 20_000
    data = sample(CREDIT).replace(b"<RmtInf>", b"<RmtInf>" + flood, 1)
    verdict = validator.validate(InputSource.from_bytes(data, "flood"))
    assert codes(verdict) == ["FF01"] and "max_elements_in_memory" in verdict.problems[0].text


def test_nesting_deeper_than_the_parser_cap_is_refused(validate: Validate) -> None:
    from gateway.iso.safe_parsing import MAX_DEPTH

    depth = MAX_DEPTH + 20
    data = b"<a>" * depth + b"</a>" * depth
    code, text, _ = only_problem(validate, data)
    assert code == "FF01"
    # The bound met, not libxml2's advice to a programmer (an option nobody can turn on here).
    assert f"nested deeper than {MAX_DEPTH} levels" in text and "XML_PARSE_HUGE" not in text


def test_deep_nesting_in_a_streamed_package_is_refused(gateway) -> None:  # type: ignore[no-untyped-def]
    from gateway.iso.safe_parsing import MAX_DEPTH

    validator = small_limits_validator(gateway.validator, tree_max_bytes=0)
    depth = MAX_DEPTH + 20
    nested = b"<Ustrd>" * depth + b"</Ustrd>" * depth
    data = sample(CREDIT).replace(b"<RmtInf>", b"<RmtInf>" + nested, 1)
    verdict = validator.validate(InputSource.from_bytes(data, "deep"))
    assert codes(verdict) == ["FF01"]
    text = verdict.problems[0].text
    assert f"nested deeper than {MAX_DEPTH} levels" in text and "XML_PARSE_HUGE" not in text
