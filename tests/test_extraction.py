"""The compiled one-pass extractor and the streaming decoder into typed commands."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from gateway.commands.inbound import DebitTransaction, SubmitDebitPackage
from gateway.composition import Gateway
from gateway.iso.converters import DECODERS
from gateway.iso.decoder import DecodingError, decode, decode_tree
from gateway.iso.extractor import Extractor
from gateway.iso.input_source import InputSource
from gateway.iso.paths import PathError, compile_path
from tests.conftest import SAMPLES, sample

NS = "urn:test"


def extractor(**fields: tuple[str, str]) -> Extractor:
    return Extractor(
        {
            name: (compile_path(path, NS, {}), DECODERS[convert])
            for name, (path, convert) in fields.items()
        }
    )


ITEM = etree.fromstring(
    f"""<Item xmlns="{NS}">
      <Id>first</Id><Id>second</Id>
      <Amt Ccy="CNY">12.30</Amt>
      <Agt><Fin><MmbId>102100099996</MmbId></Fin></Agt>
      <Bad>12,5</Bad>
    </Item>"""
)


def test_reads_text_attribute_and_nested_paths_in_one_walk() -> None:
    values, failures = extractor(
        identifier=("Id", "text"),
        amount=("Amt", "amount"),
        currency=("Amt/@Ccy", "currency"),
        agent=("Agt/Fin/MmbId", "bank_code"),
        absent=("Nope/Deeper", "text"),
    ).extract(ITEM)
    assert values == {
        "identifier": "first",
        "amount": 1230,
        "currency": "CNY",
        "agent": "102100099996",
    }
    assert failures == []


def test_unconvertible_text_is_a_failure_not_an_exception() -> None:
    values, failures = extractor(bad=("Bad", "amount")).extract(ITEM)
    assert values == {}
    assert [(failure.field, failure.path) for failure in failures] == [("bad", "Bad")]
    assert "not a decimal" in failures[0].reason


def test_amount_with_more_than_two_decimals_is_refused() -> None:
    element = etree.fromstring(f'<Item xmlns="{NS}"><Amt>1.005</Amt></Item>')
    _, failures = extractor(amount=("Amt", "amount")).extract(element)
    assert "more than two decimals" in failures[0].reason


def test_generated_source_is_readable() -> None:
    source = extractor(amount=("Amt", "amount")).source
    assert "TAG_Amt" in source and "values['amount']" in source


@pytest.mark.parametrize("path", ["", "A//B", "A/@", "A/x:B", "A/1B"])
def test_bad_paths_do_not_compile(path: str) -> None:
    with pytest.raises(PathError):
        compile_path(path, NS, {})


def test_decoder_yields_the_header_then_every_item(gateway: Gateway) -> None:
    path = SAMPLES / "pacs.003.001.08" / "valid-B308-cheque-truncation.xml"
    codec = gateway.codecs.for_message("pacs.003.001.08")
    assert codec is not None
    header, *items = decode(InputSource.from_path(path), codec, gateway.settings.parser)
    assert isinstance(header, SubmitDebitPackage)
    assert header.business_type == "B308" and header.reply_deadline == "T+1"
    assert header.control_sum == sum(item.amount for item in items)  # type: ignore[attr-defined]
    assert all(isinstance(item, DebitTransaction) for item in items)
    first = items[0]
    assert isinstance(first, DebitTransaction)
    assert first.cheque_number == "04512876" and first.cheque_issue_date == date(2026, 11, 20)
    assert first.cheque_front_image is not None and first.cheque_front_image.startswith(b"\x89PNG")


def test_decoder_streams_a_large_package(gateway: Gateway, tmp_path: Path) -> None:
    from package_generator import amount_of, write_package

    path = write_package(tmp_path / "package.xml", 2_000)
    codec = gateway.codecs.for_message("pacs.008.001.08")
    assert codec is not None
    commands = decode(InputSource.from_path(path), codec, gateway.settings.parser)
    header = next(commands)
    total = 0
    count = 0
    for item in commands:
        count += 1
        total += item.amount  # type: ignore[attr-defined]
    assert count == 2_000 == header.number_of_transactions  # type: ignore[attr-defined]
    assert total == sum(amount_of(index) for index in range(1, 2_001))


@pytest.mark.parametrize(
    "path",
    sorted(SAMPLES.glob("*/valid-*.xml")),
    ids=lambda path: f"{path.parent.name}/{path.name}",
)
def test_decoding_a_parsed_tree_gives_the_commands_streaming_gives(
    gateway: Gateway, path: Path
) -> None:
    """The gateway decodes a submission from the tree it already parsed; a package file is
    streamed. Both must give the same commands for every sample."""
    root = etree.fromstring(path.read_bytes())
    document = root[-1] if root.tag.endswith("}Message") else root
    codec = gateway.codecs.for_namespace(etree.QName(document).namespace or "")
    assert codec is not None
    if codec.definition.decode is None:
        with pytest.raises(DecodingError, match="no \\[decode\\] section"):
            decode_tree(root, codec)
        return
    streamed = list(decode(InputSource.from_path(path), codec, gateway.settings.parser))
    assert decode_tree(root, codec) == streamed
    assert len(streamed) >= 1


def test_decoding_a_tree_of_another_message_is_refused(gateway: Gateway) -> None:
    codec = gateway.codecs.for_message("pacs.008.001.08")
    assert codec is not None
    other = etree.fromstring(sample("pacs.003.001.08/valid-D100-realtime-debit.xml"))
    with pytest.raises(DecodingError, match=re.escape("not a pacs.008.001.08")):
        decode_tree(other, codec)
