"""Derive the invalid samples from the valid ones: one defect each, named by its reason code.

Run from the project root: ``.venv/bin/python tools/derive_invalid_samples.py``. Each invalid
sample is a valid sample with exactly one change, so the samples test can require that the
file gets exactly its expected code. Re-run after changing a valid sample.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent / "samples"
PACS008 = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"
PACS003 = "urn:iso:std:iso:20022:tech:xsd:pacs.003.001.08"
HEAD = "urn:iso:std:iso:20022:tech:xsd:head.001.001.02"
CHEQUE = "urn:isogw:xsd:cheque.001.01"

Mutation = Callable[[etree._ElementTree], None]


def q(namespace: str, path: str) -> str:
    return "/".join(f"{{{namespace}}}{step}" for step in path.split("/"))


def one(tree: etree._ElementTree, namespace: str, path: str, index: int = 0) -> etree._Element:
    found = tree.getroot().findall(".//" + q(namespace, path))
    return found[index]


def set_text(namespace: str, path: str, text: str, index: int = 0) -> Mutation:
    def mutate(tree: etree._ElementTree) -> None:
        one(tree, namespace, path, index).text = text

    return mutate


def remove(namespace: str, path: str, index: int = 0) -> Mutation:
    def mutate(tree: etree._ElementTree) -> None:
        element = one(tree, namespace, path, index)
        element.getparent().remove(element)

    return mutate


def duplicate_item(namespace: str, item: str) -> Mutation:
    """Append a copy of the first item (new TxId) and keep NbOfTxs/CtrlSum right."""

    def mutate(tree: etree._ElementTree) -> None:
        first = one(tree, namespace, item)
        clone = copy.deepcopy(first)
        clone.find(q(namespace, "PmtId/TxId")).text += "9"
        last = tree.getroot().findall(".//" + q(namespace, item))[-1]
        last.addnext(clone)
        clone.tail = last.tail
        _recount(tree, namespace, item)

    return mutate


def _recount(tree: etree._ElementTree, namespace: str, item: str) -> None:
    items = tree.getroot().findall(".//" + q(namespace, item))
    one(tree, namespace, "GrpHdr/NbOfTxs").text = str(len(items))
    total = sum(round(float(i.find(q(namespace, "IntrBkSttlmAmt")).text) * 100) for i in items)
    one(tree, namespace, "GrpHdr/CtrlSum").text = f"{total // 100}.{total % 100:02d}"


def set_amount(namespace: str, item: str, index: int, text: str) -> Mutation:
    def mutate(tree: etree._ElementTree) -> None:
        one(tree, namespace, f"{item}/IntrBkSttlmAmt", index).text = text
        _recount(tree, namespace, item)

    return mutate


def _transaction_payment_type(transaction: etree._Element, namespace: str) -> etree._Element:
    info = transaction.find(q(namespace, "PmtTpInf"))
    if info is None:
        info = etree.Element(q(namespace, "PmtTpInf"))
        transaction.find(q(namespace, "PmtId")).addnext(info)
    return info


def add_transaction_type(namespace: str, item: str, code: str) -> Mutation:
    def mutate(tree: etree._ElementTree) -> None:
        info = _transaction_payment_type(one(tree, namespace, item), namespace)
        for old in list(info):
            info.remove(old)
        etree.SubElement(
            etree.SubElement(info, q(namespace, "CtgyPurp")), q(namespace, "Prtry")
        ).text = code

    return mutate


def add_transaction_deadline(namespace: str, item: str, deadline: str, index: int) -> Mutation:
    def mutate(tree: etree._ElementTree) -> None:
        info = _transaction_payment_type(one(tree, namespace, item, index), namespace)
        package_type = one(tree, namespace, "GrpHdr/PmtTpInf/CtgyPurp/Prtry").text
        for old in list(info):
            info.remove(old)
        etree.SubElement(
            etree.SubElement(info, q(namespace, "LclInstrm")), q(namespace, "Prtry")
        ).text = deadline
        etree.SubElement(
            etree.SubElement(info, q(namespace, "CtgyPurp")), q(namespace, "Prtry")
        ).text = package_type

    return mutate


def write(source: str, target: str, mutation: Mutation) -> None:
    path = ROOT / source
    tree = etree.parse(str(path))
    mutation(tree)
    text = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    (path.parent / target).write_bytes(text + b"\n")


def write_raw(source: str, target: str, change: Callable[[bytes], bytes]) -> None:
    path = ROOT / source
    (path.parent / target).write_bytes(change(path.read_bytes()))


CREDIT = "pacs.008.001.08/valid-A100-ordinary-credit.xml"
REALTIME_CREDIT = "pacs.008.001.08/valid-C100-realtime-credit.xml"
PAYROLL = "pacs.008.001.08/valid-E100-periodic-credit-payroll.xml"
DEBIT = "pacs.003.001.08/valid-B100-ordinary-debit.xml"
CHEQUES = "pacs.003.001.08/valid-B308-cheque-truncation.xml"
PERIODIC_DEBIT = "pacs.003.001.08/valid-F100-periodic-debit.xml"
REALTIME_DEBIT = "pacs.003.001.08/valid-D100-realtime-debit.xml"
CT = "CdtTrfTxInf"
DD = "DrctDbtTxInf"


def main() -> None:
    c, d = PACS008, PACS003
    write(CREDIT, "invalid-AM18-nboftxs-mismatch.xml", set_text(c, "GrpHdr/NbOfTxs", "5"))
    write(CREDIT, "invalid-AM10-control-sum.xml", set_text(c, "GrpHdr/CtrlSum", "62280.51"))
    write(REALTIME_CREDIT, "invalid-AM18-real-time-two-transactions.xml", duplicate_item(c, CT))
    write(
        CREDIT,
        "invalid-FF06-unknown-business-type.xml",
        set_text(c, "GrpHdr/PmtTpInf/CtgyPurp/Prtry", "Z999"),
    )
    write(
        CREDIT,
        "invalid-FF06-debit-type-on-credit.xml",
        set_text(c, "GrpHdr/PmtTpInf/CtgyPurp/Prtry", "B100"),
    )
    write(PAYROLL, "invalid-FF06-mixed-business-types.xml", add_transaction_type(c, CT, "A100"))
    write(CREDIT, "invalid-AM02-credit-over-cap.xml", set_amount(c, CT, 1, "50000.01"))
    write(CREDIT, "invalid-AM01-zero-amount.xml", set_amount(c, CT, 2, "0.00"))
    write(
        CREDIT,
        "invalid-AM03-currency-not-allowed.xml",
        lambda tree: one(tree, c, f"{CT}/IntrBkSttlmAmt", 1).set("Ccy", "USD"),
    )
    write(
        CREDIT,
        "invalid-AM05-duplicate-transaction-id.xml",
        lambda tree: setattr(
            one(tree, c, f"{CT}/PmtId/TxId", 3), "text", one(tree, c, f"{CT}/PmtId/TxId", 0).text
        ),
    )
    write(
        CREDIT,
        "invalid-RC01-bank-code-format.xml",
        set_text(c, f"{CT}/CdtrAgt/FinInstnId/ClrSysMmbId/MmbId", "10410000000"),
    )
    write(
        CREDIT,
        "invalid-RC08-unknown-instructed-agent.xml",
        set_text(c, "GrpHdr/InstdAgt/FinInstnId/ClrSysMmbId/MmbId", "308584000013"),
    )
    write(
        CREDIT,
        "invalid-RC08-instructed-agent-not-clearing-bank.xml",
        set_text(c, "GrpHdr/InstdAgt/FinInstnId/ClrSysMmbId/MmbId", "104290003033"),
    )
    write(
        CREDIT,
        "invalid-RC08-header-sender-not-instructing-agent.xml",
        set_text(HEAD, "Fr/FIId/FinInstnId/ClrSysMmbId/MmbId", "103100000026"),
    )
    write(
        CREDIT,
        "invalid-RC10-second-receiving-bank.xml",
        set_text(c, f"{CT}/CdtrAgt/FinInstnId/ClrSysMmbId/MmbId", "105100000017", 2),
    )
    write(
        CREDIT,
        "invalid-RC09-unknown-debtor-agent.xml",
        set_text(c, f"{CT}/DbtrAgt/FinInstnId/ClrSysMmbId/MmbId", "102100000001", 1),
    )
    write(
        CREDIT, "invalid-FF01-schema-missing-transaction-id.xml", remove(c, f"{CT}/PmtId/TxId", 2)
    )
    write(
        CREDIT,
        "invalid-FF01-header-message-definition.xml",
        set_text(HEAD, "MsgDefIdr", "pacs.003.001.08"),
    )
    write_raw(
        CREDIT,
        "invalid-FF01-doctype.xml",
        lambda data: data.replace(
            b"?>\n", b'?>\n<!DOCTYPE Message [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n', 1
        ),
    )
    write_raw(
        CREDIT,
        "invalid-FF01-encoding-utf-7.xml",
        lambda data: data.replace(b'encoding="UTF-8"', b'encoding="UTF-7"', 1),
    )

    write(DEBIT, "invalid-FF05-missing-reply-deadline.xml", remove(d, "GrpHdr/PmtTpInf/LclInstrm"))
    write(
        DEBIT,
        "invalid-FF05-different-reply-deadlines.xml",
        add_transaction_deadline(d, DD, "T+5", 1),
    )
    write(
        DEBIT,
        "invalid-FF06-credit-type-on-debit.xml",
        set_text(d, "GrpHdr/PmtTpInf/CtgyPurp/Prtry", "A100"),
    )
    write(
        REALTIME_DEBIT, "invalid-AM18-real-time-debit-two-transactions.xml", duplicate_item(d, DD)
    )
    write(
        DEBIT,
        "invalid-RC09-second-paying-bank.xml",
        set_text(d, f"{DD}/DbtrAgt/FinInstnId/ClrSysMmbId/MmbId", "103100000026", 1),
    )
    write(
        PERIODIC_DEBIT,
        "invalid-MD01-periodic-debit-without-mandate.xml",
        remove(d, f"{DD}/DrctDbtTx", 1),
    )
    write(CHEQUES, "invalid-CH21-cheque-data-missing.xml", remove(d, f"{DD}/SplmtryData", 1))
    write(
        CHEQUES,
        "invalid-CH16-cheque-image-digest.xml",
        lambda tree: setattr(one(tree, CHEQUE, "BckImg/Sha256", 0), "text", "0" * 64),
    )
    write(CHEQUES, "invalid-AM12-cheque-amount-differs.xml", set_text(CHEQUE, "Amt", "36800.01", 0))
    write(DEBIT, "invalid-CH17-cheque-data-on-ordinary-debit.xml", _borrow_cheque)


def _borrow_cheque(tree: etree._ElementTree) -> None:
    cheques = etree.parse(str(ROOT / CHEQUES))
    data = one(cheques, PACS003, f"{DD}/SplmtryData")
    transaction = one(tree, PACS003, DD)
    transaction.append(copy.deepcopy(data))


if __name__ == "__main__":
    main()
