"""Start-up fails fast, naming the codec file and what is wrong with it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.commands.inbound import INBOUND_MODELS
from gateway.commands.outbound import OUTBOUND_MODELS
from gateway.composition import Gateway
from gateway.iso.codec_catalogue import CodecError, load_codecs
from gateway.iso.rules.registry import rule_requirements
from tests.conftest import PROJECT

MODELS = {**INBOUND_MODELS, **OUTBOUND_MODELS}


def load_with(gateway: Gateway, tmp_path: Path, name: str, old: str, new: str) -> None:
    folder = tmp_path / "codecs"
    shutil.copytree(PROJECT / "codecs", folder)
    path = folder / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    load_codecs(folder, gateway.schemas, MODELS, rule_requirements())


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('path = "PmtId/TxId"', 'path = "PmtId/TxIdentifier"', "does not exist in the schema"),
        ('command = "SubmitCreditPackage"', 'command = "SubmitCredits"', "unknown command"),
        (
            'transaction_id = { path = "PmtId/TxId" }\n',
            "",
            "required fields of CreditTransaction not mapped",
        ),
        ('"currency",', '"currency-x",', "unknown rule"),
        ('convert = "amount"', 'convert = "money"', "decode.header.control_sum.convert"),
        ('schema = "pacs.008.001.08.xsd"', 'schema = "pacs.008.001.09.xsd"', "is not in"),
        ('path = "IntrBkSttlmAmt/@Ccy"', 'path = "IntrBkSttlmAmt/@Currency"', "no attribute"),
    ],
)
def test_broken_codec_fails_fast(
    gateway: Gateway, tmp_path: Path, old: str, new: str, message: str
) -> None:
    with pytest.raises(CodecError) as failure:
        load_with(gateway, tmp_path, "pacs.008.001.08.toml", old, new)
    assert "pacs.008.001.08.toml" in str(failure.value)
    assert message in str(failure.value)


def test_file_name_must_be_the_message_id(gateway: Gateway, tmp_path: Path) -> None:
    folder = tmp_path / "codecs"
    shutil.copytree(PROJECT / "codecs", folder)
    (folder / "pacs.008.001.08.toml").rename(folder / "credit.toml")
    with pytest.raises(CodecError, match="file name must be the message id"):
        load_codecs(folder, gateway.schemas, MODELS, rule_requirements())


def test_encode_field_must_exist_on_its_model(gateway: Gateway, tmp_path: Path) -> None:
    with pytest.raises(CodecError, match="MessageReject has no 'reason_texts'"):
        load_with(
            gateway,
            tmp_path,
            "admi.002.001.01.toml",
            'field = "reason_text"',
            'field = "reason_texts"',
        )


def test_rule_needing_a_field_the_command_lacks(gateway: Gateway, tmp_path: Path) -> None:
    with pytest.raises(CodecError, match="rule 'mandate' needs fields"):
        load_with(
            gateway, tmp_path, "pacs.008.001.08.toml", '"currency",', '"currency", "mandate",'
        )


def test_codec_loading_is_complete(gateway: Gateway) -> None:
    assert len(gateway.codecs) == len(list((PROJECT / "codecs").glob("*.toml"))) == 14
