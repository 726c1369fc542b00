"""The settlement accounts' statements: each account's bookings since its last statement, and
the balance they started from. The day switch closes a statement per account (camt.053 to the
bank), which opens the next one from its closing balance, so a bank can chain them: each
opening balance is the previous closing balance, and nothing is booked between two
statements without being on one of them.

A statement covers the time from one day switch to the next, so the bookings on a holiday (no
switch) and a net settled days after its session (a shortfall) are on the statement of the
day they were booked, not of the session's business date.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from gateway.clearing.accounts import Account
from gateway.clearing.events import Movement, StatementClosed


@dataclass(slots=True)
class OpenStatement:
    opened_at: datetime
    opening_balance: int
    sequence: int = 1
    movements: list[Movement] = field(default_factory=list)


class StatementBook:
    def __init__(self, accounts: Mapping[str, Account], start: datetime) -> None:
        self._accounts = accounts
        self.current = {
            code: OpenStatement(start, account.settlement_balance)
            for code, account in accounts.items()
        }
        """Each account's open statement: what was booked since its last statement."""

    def book(
        self, code: str, at: datetime, amount: int, value_date: date, session_id: str | None
    ) -> None:
        """Record a change of ``code``'s settlement balance (already made on the account)."""
        self.current[code].movements.append(Movement(at, amount, value_date, session_id))

    def close(self, business_date: date, at: datetime) -> list[StatementClosed]:
        """Every account's statement of ``business_date``, up to ``at``; the next ones open."""
        closed = []
        for code, statement in sorted(self.current.items()):
            closing = self._accounts[code].settlement_balance
            closed.append(
                StatementClosed(
                    code,
                    business_date,
                    statement.sequence,
                    statement.opened_at,
                    at,
                    statement.opening_balance,
                    closing,
                    tuple(statement.movements),
                )
            )
            self.current[code] = OpenStatement(at, closing, statement.sequence + 1)
        return closed

    def fingerprint(self) -> tuple[object, ...]:
        return tuple(
            (code, statement.sequence, statement.opening_balance, tuple(statement.movements))
            for code, statement in sorted(self.current.items())
        )
