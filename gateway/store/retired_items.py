"""The record of payment items the clearing core retired: written with the command that
retired them, read by the operator's transaction queries (portable SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Row, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clearing.events import BusinessRetired
from gateway.clearing.items import ItemState, PaymentItem
from gateway.store.tables import retired_item


@dataclass(frozen=True)
class ItemFilter:
    """Which payment items an operator asks for (each condition if given)."""

    participant: str | None = None
    """Items this bank pays, is paid by or sent."""
    business_date: date | None = None
    state: str | None = None
    package: str | None = None
    """Items of this package or return (``SENDER:MESSAGE_ID``)."""

    def selects(self, item: PaymentItem) -> bool:
        if self.participant is not None and self.participant not in (
            item.payer,
            item.payee,
            item.package_id.partition(":")[0],
        ):
            return False
        if self.business_date is not None and item.business_date != self.business_date:
            return False
        if self.package is not None and item.package_id != self.package:
            return False
        return self.state is None or item.state.value == self.state


def retired_item_rows(retired: BusinessRetired) -> list[dict[str, Any]]:
    """One row per item ``retired`` reports, in the order the core held them."""
    through = retired.through.isoformat()
    return [
        {
            "item_id": item.item_id,
            "package_id": item.package_id,
            "sender": item.package_id.partition(":")[0],
            "transaction_id": item.transaction_id,
            "business_type": item.business_type,
            "real_time": item.real_time,
            "payer": item.payer,
            "payee": item.payee,
            "amount": item.amount,
            "business_date": item.business_date.isoformat(),
            "state": item.state.value,
            "session_id": item.session_id,
            "reason_code": item.reason_code,
            "return_of": item.return_of,
            "returned_by": item.returned_by,
            "retired_through": through,
        }
        for item in retired.items
    ]


def _item(row: Row[Any]) -> PaymentItem:
    return PaymentItem(
        item_id=row.item_id,
        package_id=row.package_id,
        transaction_id=row.transaction_id,
        business_type=row.business_type,
        real_time=bool(row.real_time),
        payer=row.payer,
        payee=row.payee,
        amount=int(row.amount),
        business_date=date.fromisoformat(row.business_date),
        state=ItemState(row.state),
        session_id=row.session_id,
        reason_code=row.reason_code,
        returned_by=row.returned_by,
        return_of=row.return_of,
    )


async def find_retired_items(
    connection: AsyncConnection, limit: int, wanted: ItemFilter
) -> list[PaymentItem]:
    """Retired items that ``wanted`` selects, the last retired first, at most ``limit``."""
    query = select(retired_item).order_by(retired_item.c.sequence.desc()).limit(limit)
    if wanted.participant is not None:
        query = query.where(
            or_(
                retired_item.c.payer == wanted.participant,
                retired_item.c.payee == wanted.participant,
                retired_item.c.sender == wanted.participant,
            )
        )
    if wanted.business_date is not None:
        query = query.where(retired_item.c.business_date == wanted.business_date.isoformat())
    if wanted.state is not None:
        query = query.where(retired_item.c.state == wanted.state)
    if wanted.package is not None:
        # An item's id is its package's and "/" and its transaction id: a range of the
        # item id's unique index ("0" follows "/").
        query = query.where(
            retired_item.c.item_id >= wanted.package + "/",
            retired_item.c.item_id < wanted.package + "0",
        )
    return [_item(row) for row in await connection.execute(query)]


async def find_retired_item(connection: AsyncConnection, item_id: str) -> PaymentItem | None:
    row = (
        await connection.execute(select(retired_item).where(retired_item.c.item_id == item_id))
    ).first()
    return None if row is None else _item(row)
