"""Property tests over random sequences of packages, receipts, cancellations, stops, reversals,
returns, sessions, day switches, cap changes and funds. After every step:

* the trial balance holds (positions and queued settlements sum to zero; money is conserved);
* no paying bank's net debit exceeds its cap at any netting event;
* netted items never change;
* each payer's queue nets in FIFO order;
* replaying any command changes nothing;
* each settlement account's statements chain: each opens where the previous one closed, right
  after it; it lists every booking since (each net settled, each credit), in order, within its
  period; they add up from its opening to its closing balance;
and at the end, once caps are raised and time has passed, every item has ended in exactly one
terminal state (a settled item may only go on to be returned).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.clearing.events import (
    BusinessRetired,
    FundsCredited,
    ItemChanged,
    NetSettled,
    StatementClosed,
)
from gateway.clearing.items import ENDED, ItemState, PaymentItem
from gateway.clearing.sessions import Session
from gateway.configuration.clearing_settings import ClearingSettings
from tests.clearing.scenario import BOC, CCB, ICBC, SETTINGS, Scenario

BANKS = (ICBC, BOC, CCB)
S = ItemState
AMOUNTS = st.sampled_from(["1.00", "999.99", "20000.00", "45000.00", "80000.00", "120000.00"])


class Observer:
    """Wraps the core's netting step and records what the invariants need."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.initial = {
            code: account.settlement_balance for code, account in scenario.core.accounts.items()
        }
        self.initial_balances = sum(
            account.settlement_balance for account in scenario.core.accounts.values()
        )
        self.states: dict[str, ItemState] = {}
        self.netted: dict[str, tuple[str | None, str, str, int]] = {}
        self.queue_order: dict[str, list[str]] = defaultdict(list)
        self.released: dict[str, list[str]] = defaultdict(list)
        self.ended_visits: dict[str, list[str]] = defaultdict(list)
        self.start = scenario.now
        self.statements: dict[str, StatementClosed] = {}
        self.bookings: dict[str, list[int]] = defaultdict(list)
        self.retired: set[str] = set()
        netting = scenario.core.netting
        original = netting._net

        def checked_net(item: PaymentItem, session: Session, events: list[Any]) -> None:
            payer = netting.accounts[item.payer]
            assert item.payer == item.payee or item.amount <= payer.available, "cap exceeded"
            was_queued = item.state is S.QUEUED
            if not item.real_time and not was_queued:
                assert not netting.queues[item.payer], f"{item.item_id} overtook the queue"
            original(item, session, events)
            assert -payer.net_position <= payer.cap or item.payer == item.payee
            if was_queued:
                self.released[item.payer].append(item.item_id)

        netting._net = checked_net  # type: ignore[method-assign]

    def record(self) -> None:
        for event in self.scenario.take_events():
            if isinstance(event, ItemChanged) and event.state == S.QUEUED:
                item = self.scenario.core.items[event.item_id]
                self.queue_order[item.payer].append(item.item_id)
            if isinstance(event, NetSettled) and event.amount:
                self.bookings[event.participant].append(event.amount)
            if isinstance(event, FundsCredited):
                self.bookings[event.participant].append(event.amount)
            if isinstance(event, StatementClosed):
                self.chain(event)
            if isinstance(event, BusinessRetired):
                # Reported once, as it ended, and gone from the core.
                for item in event.items:
                    assert item.item_id not in self.scenario.core.items, item
                    assert item.item_id not in self.retired, item
                    self.retired.add(item.item_id)
                    self.observe(item)
        for item in self.scenario.core.items.values():
            self.observe(item)

    def observe(self, item: PaymentItem) -> None:
        if self.states.get(item.item_id) is not item.state:
            self.states[item.item_id] = item.state
            if item.state in ENDED:
                self.ended_visits[item.item_id].append(item.state.value)
        if item.state in (S.NETTED, S.SETTLED, S.RETURNED):
            record = (item.session_id, item.payer, item.payee, item.amount)
            assert self.netted.setdefault(item.item_id, record) == record, "netted item changed"
        else:
            assert item.item_id not in self.netted, "netted item left netting"

    def chain(self, statement: StatementClosed) -> None:
        previous = self.statements.get(statement.participant)
        if previous is None:
            assert statement.sequence == 1
            assert statement.period_from == self.start
            assert statement.opening_balance == self.initial[statement.participant]
        else:
            assert statement.sequence == previous.sequence + 1
            assert statement.period_from == previous.period_to
            assert statement.opening_balance == previous.closing_balance
        assert (
            statement.opening_balance + sum(movement.amount for movement in statement.movements)
            == statement.closing_balance
        )
        amounts = [movement.amount for movement in statement.movements]
        assert amounts == self.bookings.pop(statement.participant, [])
        assert all(
            statement.period_from <= movement.at <= statement.period_to
            for movement in statement.movements
        )
        self.statements[statement.participant] = statement

    def check(self) -> None:
        core = self.scenario.core
        queued_debits = sum(amount for _, _, amount in core.settlement_queue)
        assert sum(account.net_position for account in core.accounts.values()) + queued_debits == 0
        assert (
            sum(account.settlement_balance for account in core.accounts.values()) + queued_debits
            == self.initial_balances + core.funds_credited
        )
        for session in core.sessions.values():
            if session.closed:
                assert sum(session.nets.values()) == 0
        # What the core keeps refers only to what it keeps (retirement never leaves a dangling
        # reference behind).
        for package in core.packages.values():
            assert all(item_id in core.items for item_id in package.item_ids), package
        for receipt in core.receipts.values():
            assert receipt.package_id in core.packages, receipt
        for session in core.sessions.values():
            if not session.settled:
                assert all(item_id in core.items for item_id in session.item_ids), session
        for queue in core.netting.queues.values():
            assert all(item_id in core.items for item_id in queue)
        assert all(item_id in core.items for _, item_id in core.deadlines)
        for payer, released in self.released.items():
            order = {item_id: position for position, item_id in enumerate(self.queue_order[payer])}
            positions = [order[item_id] for item_id in released]
            assert positions == sorted(positions), f"queue of {payer} not FIFO"

    def replay_last(self) -> None:
        before = self.scenario.core.fingerprint()
        assert self.scenario.core.execute(self.scenario.log[-1]) == []
        assert self.scenario.core.fingerprint() == before


def step(scenario: Scenario, data: st.DataObject) -> None:
    core = scenario.core
    action = data.draw(
        st.sampled_from(
            [
                "credit",
                "credit",
                "debit",
                "real-time",
                "receipt",
                "cancel",
                "stop",
                "reverse",
                "return",
                "advance",
                "close",
                "switch",
                "cap",
                "fund",
            ]
        )
    )
    bank = st.sampled_from(BANKS)
    if action == "credit":
        payer, payee = data.draw(bank), data.draw(bank)
        if payer != payee:
            kind = data.draw(st.sampled_from(["A100", "E100"]))
            scenario.submit(
                kind,
                payer,
                payee,
                (payer, payee, data.draw(AMOUNTS)),
                (payer, payee, data.draw(AMOUNTS)),
            )
    elif action == "debit":
        payer, payee = data.draw(bank), data.draw(bank)
        if payer != payee:
            kind = data.draw(st.sampled_from(["B100", "F100"]))
            scenario.submit(
                kind,
                payee,
                payer,
                (payer, payee, data.draw(AMOUNTS)),
                deadline_days=data.draw(st.integers(0, 2)),
            )
    elif action == "real-time":
        payer, payee = data.draw(bank), data.draw(bank)
        if payer != payee:
            if data.draw(st.booleans()):
                scenario.submit("C100", payer, payee, (payer, payee, data.draw(AMOUNTS)))
            else:
                scenario.submit("D100", payee, payer, (payer, payee, data.draw(AMOUNTS)))
    elif action == "receipt" and core.packages:
        awaiting = sorted(
            {item.package_id for item in core.items.values() if item.state is S.AWAITING_RECEIPT}
        ) or sorted(core.packages)
        package = core.packages[data.draw(st.sampled_from(awaiting))]
        answers = {
            core.items[item_id].transaction_id: data.draw(st.sampled_from([True, True, "AC01"]))
            for item_id in package.item_ids
        }
        sender = data.draw(st.sampled_from([package.receiver, package.receiver, *BANKS]))
        scenario.receipt(package.package_id, sender, **answers)
    elif action == "cancel" and core.packages:
        waiting = sorted(
            {
                item.package_id
                for item in core.items.values()
                if item.state is S.QUEUED and item.package_id in core.packages
            }
        )
        targets = waiting + sorted(core.receipts) or sorted(core.packages)
        target = data.draw(st.sampled_from(targets))
        owner = (
            core.receipts[target].sender
            if target in core.receipts
            else core.packages[target].sender
        )
        scenario.cancel(data.draw(st.sampled_from([owner, owner, *BANKS])), target)
    elif action in ("stop", "reverse") and core.packages:
        package = core.packages[data.draw(st.sampled_from(sorted(core.packages)))]
        requester = data.draw(st.sampled_from([package.sender, package.sender, *BANKS]))
        if action == "stop":
            scenario.stop(requester, package.package_id)
        else:
            scenario.reverse(requester, package.package_id)
    elif action == "return" and core.items:
        item = core.items[data.draw(st.sampled_from(sorted(core.items)))]
        scenario.return_items(data.draw(st.sampled_from([item.payee, *BANKS])), item.item_id)
    elif action == "advance":
        scenario.advance(seconds=data.draw(st.sampled_from([5, 25, 3600, 7 * 3600, 26 * 3600])))
    elif action == "close":
        scenario.close_session()
    elif action == "switch":
        scenario.switch_day()
    elif action == "cap":
        scenario.set_cap(
            data.draw(bank),
            credit_line=data.draw(st.sampled_from(["0.00", "30000.00", "200000.00"])),
        )
    elif action == "fund":
        scenario.fund(data.draw(bank), data.draw(AMOUNTS))
    else:
        scenario.advance(seconds=1)


KEEPING_ONE_DAY = SETTINGS.model_copy(
    update={
        "retention": SETTINGS.retention.model_copy(update={"business_days": 1, "items_per_tick": 1})
    }
)
"""Finished business retired one business day after its end of day: retirement in most runs,
one package (and one command id) at each tick, so that it spans several."""


@pytest.mark.parametrize("clearing_settings", [SETTINGS, KEEPING_ONE_DAY], ids=["5-days", "1-day"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_invariants_hold_after_every_step(
    clearing_settings: ClearingSettings, data: st.DataObject
) -> None:
    scenario = Scenario(settings=clearing_settings)
    observer = Observer(scenario)
    for _ in range(data.draw(st.integers(5, 45))):
        before = len(scenario.log)
        step(scenario, data)
        observer.record()
        observer.check()
        if len(scenario.log) > before:
            observer.replay_last()
    # Drain: plenty of cap and funds, then time passes; every item must end.
    for bank in BANKS:
        scenario.set_cap(bank, credit_line="100000000.00")
        observer.record()
        scenario.fund(bank, "100000000.00")
        observer.record()
    scenario.advance(days=6)
    observer.record()
    scenario.switch_day()
    observer.record()
    scenario.advance(days=1)
    observer.record()
    observer.check()
    # Days switched while time passed: every account had statements, and the last one ends
    # with what the account holds (nothing was booked after it).
    for code, account in scenario.core.accounts.items():
        assert (
            observer.statements[code].closing_balance + sum(observer.bookings.get(code, []))
            == account.settlement_balance
        )
    # Every item the core ever held is either still held or was reported retired (as it
    # ended), and has ended.
    assert set(scenario.core.items) | observer.retired == set(observer.states)
    assert not set(scenario.core.items) & observer.retired
    for item_id, state in observer.states.items():
        assert state in ENDED, f"{item_id} is still {state}"
        visits = observer.ended_visits[item_id]
        assert visits in ([state.value], ["settled", "returned"]), (item_id, visits)
