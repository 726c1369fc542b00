"""Transaction records for audit, with the parties' account details masked.

A record is one payment item of the clearing core (its amount, banks, state, session and
reason), or one the core has retired (as it ended: ``gateway.store.retired_items``), with
what the payer's and payee's accounts and names were (read from the signed message the item
came in, through the message's codec) and where that message came from and how it was
verified (the client's address, its certificate, the signature method).

Account numbers and names are masked (seed 002, 审计与记录保存: transaction records keep both
parties' account details 脱敏): an account number shows its first four and last four
characters, a name its first character. The signed message itself, unmasked, stays in the
ledger as evidence (``isogw core message``).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clearing.core import ClearingCore
from gateway.clearing.items import PaymentItem
from gateway.iso.codec_catalogue import CodecCatalogue
from gateway.iso.converters import from_amount
from gateway.iso.decoder import DecodingError, decode_tree
from gateway.iso.safe_parsing import SAFE_PARSE_OPTIONS
from gateway.store.messages import Submission, find_submission
from gateway.store.retired_items import ItemFilter, find_retired_item, find_retired_items

MASK = "*"
ACCOUNT_SHOWN = 4
"""Characters of an account number shown at each end (only the last ones of a short one)."""


def mask_account(account: str | None) -> str | None:
    """``6231500000123456`` → ``6231********3456``; up to eight characters, only the last
    four show; up to four, none."""
    if account is None:
        return None
    if len(account) > 2 * ACCOUNT_SHOWN:
        hidden = len(account) - 2 * ACCOUNT_SHOWN
        return account[:ACCOUNT_SHOWN] + MASK * hidden + account[-ACCOUNT_SHOWN:]
    if len(account) > ACCOUNT_SHOWN:
        return MASK * (len(account) - ACCOUNT_SHOWN) + account[-ACCOUNT_SHOWN:]
    return MASK * len(account)


def mask_name(name: str | None) -> str | None:
    """``赵磊`` → ``赵*``; ``ZHAO LEI`` → ``Z*******``."""
    if name is None:
        return None
    return name[:1] + MASK * (len(name) - 1)


@dataclass(frozen=True)
class TransactionRecord:
    item: str
    """The item's id: sender:message id/transaction id."""
    business_type: str
    real_time: bool
    amount: str
    """CNY, e.g. ``2000.00``."""
    business_date: str
    state: str
    reason_code: str | None
    session: str | None
    payer: str
    """The clearing bank whose net debit position the item raises."""
    payer_account: str | None
    payer_name: str | None
    payee: str
    payee_account: str | None
    payee_name: str | None
    received_at: str | None
    """When the message the item came in was received (None: not kept in the ledger)."""
    client_address: str | None
    certificate_sha256: str | None
    signature_method: str | None
    return_of: str | None
    retired: bool
    """The core has retired the item (it ended, and its business day is past the days kept);
    this is the record kept of how it ended."""


@dataclass(frozen=True)
class _Parties:
    payer_account: str | None = None
    payer_name: str | None = None
    payee_account: str | None = None
    payee_name: str | None = None

    def swapped(self) -> _Parties:
        return _Parties(self.payee_account, self.payee_name, self.payer_account, self.payer_name)


class _Messages:
    """The submissions the items came in and their decoded transactions, each read once."""

    def __init__(self, connection: AsyncConnection, codecs: CodecCatalogue) -> None:
        self._connection = connection
        self._codecs = codecs
        self._submissions: dict[str, Submission | None] = {}
        self._transactions: dict[str, dict[str, BaseModel]] = {}

    async def submission(self, package_id: str) -> Submission | None:
        if package_id not in self._submissions:
            sender, _, message_id = package_id.partition(":")
            self._submissions[package_id] = await find_submission(
                self._connection, sender, message_id
            )
        return self._submissions[package_id]

    async def parties(self, item: PaymentItem) -> _Parties:
        """The debtor's and creditor's accounts and names of ``item`` as its message gave
        them (nothing known if the message is not kept or cannot be read)."""
        if item.package_id not in self._transactions:
            self._transactions[item.package_id] = self._decode(
                await self.submission(item.package_id)
            )
        transaction = self._transactions[item.package_id].get(item.transaction_id)
        if transaction is None:
            return _Parties()
        values = transaction.model_dump()
        return _Parties(
            values.get("debtor_account"),
            values.get("debtor_name"),
            values.get("creditor_account"),
            values.get("creditor_name"),
        )

    def _decode(self, submission: Submission | None) -> dict[str, BaseModel]:
        if submission is None or submission.body is None or submission.message_type is None:
            return {}
        codec = self._codecs.for_message(submission.message_type)
        if codec is None:
            return {}
        try:
            root = etree.fromstring(submission.body, etree.XMLParser(**SAFE_PARSE_OPTIONS))
            decoded = decode_tree(root, codec)
        except (etree.XMLSyntaxError, DecodingError, ValueError):
            return {}
        return {
            str(getattr(transaction, "transaction_id")): transaction  # noqa: B009 (any model)
            for transaction in decoded[1:]
            if hasattr(transaction, "transaction_id")
        }


async def transaction_records(
    core: ClearingCore,
    connection: AsyncConnection,
    codecs: CodecCatalogue,
    limit: int,
    wanted: ItemFilter,
) -> list[TransactionRecord]:
    """Payment items that ``wanted`` selects, masked, at most ``limit``: first the core's,
    newest first, then those it retired, the last retired first."""
    held: list[PaymentItem] = []
    for item in reversed(core.items.values()):
        if len(held) >= limit:
            break
        if wanted.selects(item):
            held.append(item)
    retired: list[PaymentItem] = []
    if len(held) < limit and core.retired_through is not None:
        retired = await find_retired_items(connection, limit - len(held), wanted)
    messages = _Messages(connection, codecs)
    records: list[TransactionRecord] = []
    for item in [*held, *retired]:
        original = None
        if item.return_of is not None:
            original = core.items.get(item.return_of) or await find_retired_item(
                connection, item.return_of
            )
        # A return's parties are those of the item it returns, the other way round.
        parties = (
            (await messages.parties(original)).swapped()
            if original is not None
            else await messages.parties(item)
        )
        submission = await messages.submission(item.package_id)
        provenance = submission.provenance if submission is not None else None
        records.append(
            TransactionRecord(
                item=item.item_id,
                business_type=item.business_type,
                real_time=item.real_time,
                amount=from_amount(item.amount),
                business_date=item.business_date.isoformat(),
                state=item.state.value,
                reason_code=item.reason_code,
                session=item.session_id,
                payer=item.payer,
                payer_account=mask_account(parties.payer_account),
                payer_name=mask_name(parties.payer_name),
                payee=item.payee,
                payee_account=mask_account(parties.payee_account),
                payee_name=mask_name(parties.payee_name),
                received_at=submission.received_at if submission is not None else None,
                client_address=provenance.client_address if provenance else None,
                certificate_sha256=provenance.certificate_sha256 if provenance else None,
                signature_method=provenance.signature_method if provenance else None,
                return_of=item.return_of,
                retired=item.item_id not in core.items,
            )
        )
    return records
