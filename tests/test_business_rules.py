"""Business rules at their boundaries, each rejection with its exact ISO reason code."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Validate, codes, sample

CREDIT = "pacs.008.001.08/valid-A100-ordinary-credit.xml"
PAYROLL = "pacs.008.001.08/valid-E100-periodic-credit-payroll.xml"
AGENCY = "pacs.008.001.08/valid-E100-agency-batch-payment.xml"
DEBIT = "pacs.003.001.08/valid-B100-ordinary-debit.xml"


def with_amount(amount: str, source: str = CREDIT) -> bytes:
    """The sample with its first transaction set to ``amount`` and CtrlSum kept right."""
    text = sample(source).decode()
    amounts = re.findall(r'<IntrBkSttlmAmt Ccy="CNY">([0-9.]+)</IntrBkSttlmAmt>', text)
    cents = [round(float(value) * 100) for value in amounts]
    cents[0] = round(float(amount) * 100)
    total = sum(cents)
    text = text.replace(f'Ccy="CNY">{amounts[0]}<', f'Ccy="CNY">{amount}<', 1)
    text = re.sub(
        r"<CtrlSum>[0-9.]+</CtrlSum>",
        f"<CtrlSum>{total // 100}.{total % 100:02d}</CtrlSum>",
        text,
        count=1,
    )
    return text.encode()


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("49999.99", []), ("50000.00", []), ("50000.01", ["AM02"]), ("0.01", []), ("0.00", ["AM01"])],
)
def test_ordinary_credit_cap_at_its_boundary(
    validate: Validate, amount: str, expected: list[str]
) -> None:
    assert codes(validate(with_amount(amount))) == expected


def test_periodic_credit_is_not_capped(validate: Validate) -> None:
    assert codes(validate(with_amount("900000.00", PAYROLL))) == []


def test_debits_are_not_capped(validate: Validate) -> None:
    assert codes(validate(with_amount("5000000.00", DEBIT))) == []


@pytest.mark.parametrize(
    ("delta", "expected"), [("0.00", []), ("0.01", ["AM10"]), ("-0.01", ["AM10"])]
)
def test_control_sum_must_match_to_the_cent(
    validate: Validate, delta: str, expected: list[str]
) -> None:
    text = sample(CREDIT).decode()
    declared = re.search(r"<CtrlSum>([0-9.]+)</CtrlSum>", text).group(1)  # type: ignore[union-attr]
    changed = round(float(declared) * 100) + round(float(delta) * 100)
    text = text.replace(
        f"<CtrlSum>{declared}</CtrlSum>", f"<CtrlSum>{changed // 100}.{changed % 100:02d}</CtrlSum>"
    )
    assert codes(validate(text.encode())) == expected


@pytest.mark.parametrize(("declared", "expected"), [("3", ["AM18"]), ("4", []), ("5", ["AM18"])])
def test_number_of_transactions_must_match(
    validate: Validate, declared: str, expected: list[str]
) -> None:
    data = re.sub(
        rb"<NbOfTxs>\d+</NbOfTxs>",
        f"<NbOfTxs>{declared}</NbOfTxs>".encode(),
        sample(CREDIT),
        count=1,
    )
    assert codes(validate(data)) == expected


def test_indirect_participant_resolves_to_its_clearing_bank(validate: Validate) -> None:
    # 104290003033 (BOC Shanghai) clears through 104100000004, the package's receiver.
    assert b"104290003033" in sample(CREDIT)
    assert validate(sample(CREDIT)).valid


def test_indirect_participant_cannot_send_a_package(validate: Validate) -> None:
    data = sample(CREDIT).replace(b"102100099996", b"102290000011")
    verdict = validate(data)
    assert set(codes(verdict)) == {"RC08"}
    assert any("indirect participant" in problem.text for problem in verdict.problems)


def test_agency_sends_its_own_packages(validate: Validate) -> None:
    assert validate(sample(AGENCY)).valid


def test_header_must_be_addressed_to_the_centre(validate: Validate) -> None:
    data = sample(CREDIT).replace(b"<MmbId>999999999999</MmbId>", b"<MmbId>104100000004</MmbId>", 1)
    verdict = validate(data)
    assert codes(verdict) == ["RC08"]
    assert verdict.problems[0].path == "/Message/AppHdr/To/FIId/FinInstnId/ClrSysMmbId/MmbId"


def test_header_message_id_must_match_the_document(validate: Validate) -> None:
    data = sample(CREDIT).replace(
        b"<BizMsgIdr>B102100099996202611230001", b"<BizMsgIdr>B102100099996202611239999", 1
    )
    assert codes(validate(data)) == ["FF01"]


def test_currency_is_a_setting(gateway, validate: Validate) -> None:  # type: ignore[no-untyped-def]
    data = sample(CREDIT).replace(b'Ccy="CNY"', b'Ccy="HKD"')
    verdict = validate(data)
    assert set(codes(verdict)) == {"AM03"}
    assert len(verdict.problems) == data.count(b'Ccy="HKD"')
