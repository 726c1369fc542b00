"""Real-time bilateral netting, item by item, with the net debit cap check and the queues.

An item nets when its amount fits the paying bank's available amount (cap + net position):
the payer's position falls, the payee's rises, and the pair's bilateral figure in the open
session grows. A real-time item that does not fit is rejected at once (AM04). Any other item
waits in its payer's netting queue, strictly first in, first out: a later item never
overtakes an earlier one, and the queue is retried whenever the payer's available amount
grows (a credit received, a cap raised, a queued item cancelled). Real-time items are decided
on the spot and do not wait behind the queue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from gateway.clearing.accounts import Account, WarningLevel
from gateway.clearing.events import Event, ItemChanged, WarningLevelChanged
from gateway.clearing.items import ItemState, PaymentItem
from gateway.clearing.sessions import Session
from gateway.configuration.clearing_settings import WarningSettings

MAX_RELEASE_ROUNDS = 1_000_000
"""Bound of one release cascade (each round nets at least one queued item)."""


class NettingBook:
    def __init__(
        self,
        accounts: dict[str, Account],
        items: dict[str, PaymentItem],
        warnings: WarningSettings,
        overrides: dict[str, tuple[int | None, int | None]] | None = None,
    ) -> None:
        self.accounts = accounts
        self.items = items
        self.queues: dict[str, deque[str]] = {code: deque() for code in accounts}
        self._warnings = warnings
        self._overrides = overrides or {}
        self.levels: dict[str, WarningLevel] = {}
        self._thresholds: dict[str, tuple[int, int]] = {}
        for code in accounts:
            self.set_thresholds(code)
            self.levels[code] = self._level(accounts[code])

    # Decisions -------------------------------------------------------------------------

    def decide(self, item: PaymentItem, session: Session, events: list[Event]) -> None:
        """Net ``item`` now, queue it, or (real-time) reject it for the cap (AM04)."""
        payer = self.accounts[item.payer]
        fits = item.amount <= payer.cap + payer.net_position or item.payer == item.payee
        if item.real_time:
            if fits:
                self._net(item, session, events)
            else:
                item.move(ItemState.REJECTED)
                item.reason_code = "AM04"
                events.append(ItemChanged(item.item_id, item.state, reason_code="AM04"))
            return
        queue = self.queues[item.payer]
        if fits and not queue:
            self._net(item, session, events)
            return
        item.move(ItemState.QUEUED)
        queue.append(item.item_id)
        # Why it waits, for the sender's PDNG receipt: the payer's available amount under its
        # cap (this item does not fit, or items before it in the FIFO queue wait for it).
        events.append(ItemChanged(item.item_id, item.state, reason_code="AM04"))

    def _net(self, item: PaymentItem, session: Session, events: list[Event]) -> None:
        item.move(ItemState.NETTED)
        item.session_id = session.session_id
        session.item_ids.append(item.item_id)
        payer_code, payee_code, amount = item.payer, item.payee, item.amount
        if payer_code != payee_code:
            session.bilateral[(payer_code, payee_code)] += amount
            payer = self.accounts[payer_code]
            payee = self.accounts[payee_code]
            payer.net_position -= amount
            payee.net_position += amount
            self._check_level(payer, events)
            if self.levels[payee_code] is not WarningLevel.NORMAL:
                # A credit only improves a level: nothing to check while it is normal.
                self._check_level(payee, events)
        events.append(ItemChanged(item.item_id, item.state, session.session_id))

    # Queues ----------------------------------------------------------------------------

    def remove_queued(self, item: PaymentItem) -> None:
        self.queues[item.payer].remove(item.item_id)

    def release(self, participants: Iterable[str], session: Session, events: list[Event]) -> None:
        """Net queued items, in FIFO order per payer, while they fit; netting an item raises
        its payee's available amount, so the payee's queue is tried next (a cascade)."""
        pending = list(dict.fromkeys(participants))
        rounds = 0
        while pending and rounds < MAX_RELEASE_ROUNDS:
            code = pending.pop(0)
            queue = self.queues.get(code)
            account = self.accounts.get(code)
            if not queue or account is None:
                continue
            while queue and rounds < MAX_RELEASE_ROUNDS:
                head = self.items[queue[0]]
                if head.amount > account.available and head.payer != head.payee:
                    break
                queue.popleft()
                rounds += 1
                self._net(head, session, events)
                if head.payee not in pending and self.queues[head.payee]:
                    pending.append(head.payee)

    def queued(self, code: str) -> tuple[int, int]:
        """(count, amount) waiting in a payer's queue."""
        queue = self.queues[code]
        return len(queue), sum(self.items[item_id].amount for item_id in queue)

    # Warning levels --------------------------------------------------------------------

    def set_thresholds(self, code: str) -> None:
        cap = self.accounts[code].cap
        warning, critical = self._overrides.get(code, (None, None))
        self._thresholds[code] = (
            cap * (self._warnings.warning if warning is None else warning),
            cap * (self._warnings.critical if critical is None else critical),
        )

    def _level(self, account: Account) -> WarningLevel:
        warning, critical = self._thresholds[account.code]
        scaled = (account.cap + account.net_position) * 100
        if scaled < critical:
            return WarningLevel.CRITICAL
        if scaled < warning:
            return WarningLevel.WARNING
        return WarningLevel.NORMAL

    def _check_level(self, account: Account, events: list[Event]) -> None:
        level = self._level(account)
        if level is not self.levels[account.code]:
            self.levels[account.code] = level
            events.append(WarningLevelChanged(account.code, level, account.available, account.cap))

    def refresh_level(self, code: str, events: list[Event]) -> None:
        """After a cap or balance change: thresholds follow the cap."""
        self.set_thresholds(code)
        self._check_level(self.accounts[code], events)
