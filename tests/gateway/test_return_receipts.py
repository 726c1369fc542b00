"""A return (pacs.004) is netted as new items of its own, and the returning bank is told what
became of them as the sender of a credit is: PDNG (AM04) while they wait in the netting queue,
ACSP with the session once netted (before, it learnt nothing after its admi.007)."""

from __future__ import annotations

import itertools

from gateway.clearing.commands import ReturnedItem, ReturnPayment
from gateway.service.receipts import RETURN, receipts
from tests.clearing.scenario import BOC, ICBC, Scenario


def test_the_returning_bank_gets_pdng_while_its_return_waits_then_acsp() -> None:
    ledger = Scenario()
    ledger.submit("A100", ICBC, BOC, (ICBC, BOC, "1000.00"), package=f"{ICBC}:B1")
    original = f"{ICBC}:B1/T1"
    assert ledger.state(original) == "netted"
    # BOC pays the credit out again and has no cap left: nothing to return it from.
    ledger.set_cap(BOC, collateral="0", credit_line="0", ring_fenced="0")
    ledger.submit("A100", BOC, ICBC, (BOC, ICBC, "1000.00"), package=f"{BOC}:B2")
    assert ledger.available(BOC) == 0
    numbers = itertools.count(1)

    def new_id() -> str:
        return f"G{next(numbers)}"

    events = ledger.run(
        ReturnPayment(
            command_id="return-1",
            at=ledger.now,
            requester=BOC,
            return_id=f"{BOC}:R1",
            items=(ReturnedItem(package_id=f"{ICBC}:B1", transaction_id="T1"),),
        )
    )
    [waiting] = receipts(events, ledger.core, ledger.now, new_id)
    assert waiting.recipient == BOC
    assert waiting.report.original_message_id == "R1"
    assert waiting.report.original_message_type == RETURN
    [item] = waiting.report.transactions
    assert (item.original_transaction_id, item.status, item.reason_code) == ("T1", "PDNG", "AM04")
    assert item.amount == 100000

    [netted] = receipts(ledger.set_cap(BOC, collateral="60000.00"), ledger.core, ledger.now, new_id)
    assert netted.recipient == BOC and netted.report.original_message_id == "R1"
    [item] = netted.report.transactions
    assert item.status == "ACSP" and item.clearing_reference is not None
    assert ledger.state(f"{BOC}:R1/T1") == "netted"
