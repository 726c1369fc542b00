"""The record of payment items the clearing core retired: written with the command that
retired them, read by the operator's transaction queries (portable SQL)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Row, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clearing.events import BusinessRetired
from gateway.clearing.items import ItemState, PaymentItem
from gateway.store.tables import retired_item


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
    connection: AsyncConnection,
    limit: int,
    participant: str | None = None,
    business_date: date | None = None,
    state: str | None = None,
) -> list[PaymentItem]:
    """Retired items, the last retired first, at most ``limit``: those ``participant`` pays,
    is paid by or sent, of ``business_date``, in ``state`` (each filter if given)."""
    query = select(retired_item).order_by(retired_item.c.sequence.desc()).limit(limit)
    if participant is not None:
        query = query.where(
            or_(
                retired_item.c.payer == participant,
                retired_item.c.payee == participant,
                retired_item.c.sender == participant,
            )
        )
    if business_date is not None:
        query = query.where(retired_item.c.business_date == business_date.isoformat())
    if state is not None:
        query = query.where(retired_item.c.state == state)
    return [_item(row) for row in await connection.execute(query)]


async def find_retired_item(connection: AsyncConnection, item_id: str) -> PaymentItem | None:
    row = (
        await connection.execute(select(retired_item).where(retired_item.c.item_id == item_id))
    ).first()
    return None if row is None else _item(row)
