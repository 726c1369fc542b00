"""A batch package larger than a tree is parsed for (``parser.tree_max_bytes``) goes the whole
way over HTTPS: streamed validation, the clearing core, the forward of the whole package to
the receiving bank and a receipt for every transaction to the sender."""

from __future__ import annotations

from pathlib import Path

from lxml import etree
from package_generator import amount_of, write_package

from tests.gateway.conftest import ICBC, Harness

BOC = "104100000004"
TRANSACTIONS = 3_000


async def test_a_large_batch_package_is_accepted_forwarded_and_receipted(
    harness: Harness, tmp_path: Path
) -> None:
    path = write_package(tmp_path / "package.xml", TRANSACTIONS)
    body = harness.sign(ICBC, path.read_bytes())
    assert len(body) > harness.runtime.gateway.settings.parser.tree_max_bytes
    status, answer = await harness.post(ICBC, body)
    assert status == 200 and b"<RctAck>" in answer, answer[:2000]
    (forwarded,) = (await harness.outbox(BOC))["messages"]
    assert forwarded["message_type"] == "pacs.008.001.08"
    forward = harness.verify_from_centre(forwarded["xml"].encode())
    assert len(forward.findall(".//{*}CdtTrfTxInf")) == TRANSACTIONS
    (receipt,) = (await harness.outbox(ICBC))["messages"]
    report = harness.verify_from_centre(receipt["xml"].encode())
    statuses = [element.text for element in report.iter("{*}TxSts")]
    assert len(statuses) == TRANSACTIONS and set(statuses) <= {"ACSP", "PDNG"}
    # The core holds every item, for the whole amount.
    core = harness.runtime.clearing.core
    package = core.packages[f"{ICBC}:{etree.fromstring(body).findtext('.//{*}GrpHdr/{*}MsgId')}"]
    assert len(package.item_ids) == TRANSACTIONS
    assert sum(core.items[item].amount for item in package.item_ids) == sum(
        amount_of(index) for index in range(1, TRANSACTIONS + 1)
    )
