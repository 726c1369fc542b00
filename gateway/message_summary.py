"""One line that says what an outbox message is, for ``isogw outbox``: a forwarded package
with its business type and total, a receipt with each item's status, a return, reversal,
cancellation or invoice with what it refers to, a notice with its figures.

The message is told by its document's root element, so an envelope and a bare document read
the same, and a message of a type this module does not describe still gets its root's name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from lxml import etree

from gateway.iso.safe_parsing import SAFE_PARSE_OPTIONS

Element: TypeAlias = etree._Element


def summary(xml: str) -> str:
    root = etree.fromstring(xml.encode(), etree.XMLParser(**SAFE_PARSE_OPTIONS))
    document = root if etree.QName(root).localname == "Document" else root.find("{*}Document")
    message = document[0] if document is not None and len(document) else root
    describe = _DESCRIPTIONS.get(etree.QName(message).localname)
    if describe is None:
        return f"{etree.QName(message).localname} message"
    return describe(message)


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _money(amount: Element | None) -> str:
    """`` 980.00 CNY`` (with its leading space), or nothing without an amount."""
    if amount is None:
        return ""
    return f" {amount.text} {amount.get('Ccy', '')}".rstrip()


def _reason(element: Element) -> str:
    code = element.findtext(".//{*}Rsn/{*}Cd")
    return f"({code})" if code else ""


def _package(message: Element, item: str) -> str:
    """pacs.008 / pacs.003: how many items, their total, the business type (the group's, or
    else the first item's: the first in document order)."""
    text = _count(len(message.findall(f"{{*}}{item}")), "transaction")
    total = message.findtext("{*}GrpHdr/{*}CtrlSum")
    amount = message.find(f"{{*}}{item}/{{*}}IntrBkSttlmAmt")
    if total:
        currency = amount.get("Ccy") if amount is not None else None
        text += f", {total}{' ' + currency if currency else ''}"
    business_type = message.findtext(".//{*}PmtTpInf/{*}CtgyPurp/{*}Prtry")
    return f"{text} ({business_type})" if business_type else text


def _status_report(message: Element) -> str:
    """pacs.002: each item's status and reason, or the group's."""
    original = message.findtext("{*}OrgnlGrpInfAndSts/{*}OrgnlMsgId")
    statuses = [
        f"{element.findtext('{*}OrgnlTxId')}={element.findtext('{*}TxSts')}{_reason(element)}"
        for element in message.iterfind("{*}TxInfAndSts")
    ]
    if not statuses:
        group = message.find("{*}OrgnlGrpInfAndSts")
        status = group.findtext("{*}GrpSts") if group is not None else None
        statuses = [f"group {status}{_reason(group) if group is not None else ''}"]
    return f"receipt for {original}: " + ", ".join(statuses)


def _message_reject(message: Element) -> str:
    """admi.002: a bank could not process a message, or the gateway refused one."""
    where = message.findtext(".//{*}ErrLctn")
    return (
        f"reject of {message.findtext('{*}RltdRef/{*}Ref')}: "
        f"{message.findtext('.//{*}RjctgPtyRsn')} {message.findtext('.//{*}RsnDesc')}"
        + (f" at {where}" if where else "")
    )


def _acknowledgement(message: Element) -> str:
    """admi.007: accepted for processing."""
    return f"accepted for processing: {message.findtext('.//{*}RltdRef/{*}Ref')}"


def _system_event(message: Element) -> str:
    """admi.004: a day switch (DSWT), a session closed (SCLS)."""
    event = message.find("{*}EvtInf")
    if event is None:
        return "system event"
    parameters = " ".join(element.text or "" for element in event.iterfind("{*}EvtParam"))
    return f"system event {event.findtext('{*}EvtCd')}: {parameters}"


def _statement(message: Element) -> str:
    """camt.053: the settlement account's statement of a day."""
    statement = message.find("{*}Stmt")
    if statement is None:
        return "statement"
    balances = {
        balance.findtext("{*}Tp/{*}CdOrPrtry/{*}Cd"): (
            f"{balance.findtext('{*}Amt')} {balance.findtext('{*}CdtDbtInd')}"
        )
        for balance in statement.iterfind("{*}Bal")
    }
    count = len(statement.findall("{*}Ntry"))
    number = statement.findtext("{*}ElctrncSeqNb")
    return (
        f"statement {statement.findtext('{*}Id')}{f' no. {number}' if number else ''}: "
        f"opening {balances.get('OPBD')}, {count} entr{'y' if count == 1 else 'ies'}, "
        f"closing {balances.get('CLBD')}"
    )


def _net_entries(message: Element) -> str:
    """camt.054: a session's net for this bank."""
    entries = []
    for entry in message.iterfind("{*}Ntfctn/{*}Ntry"):
        amount = entry.find("{*}Amt")
        currency = amount.get("Ccy", "") if amount is not None else ""
        entries.append(
            f"net of session {entry.findtext('{*}AddtlNtryInf')}: {entry.findtext('{*}Amt')} "
            f"{currency} {entry.findtext('{*}CdtDbtInd')} {entry.findtext('{*}Sts/{*}Cd')}"
        )
    return ", ".join(entries) or "notification without entries"


def _resolution(message: Element) -> str:
    """camt.029: the answer to a cancellation or stop."""
    return f"answer to {message.findtext('.//{*}OrgnlMsgId')}: {message.findtext('.//{*}Conf')}"


def _cancellation(message: Element) -> str:
    """camt.056: a cancellation of a whole package, or a stop of some of its items."""
    group = message.find("{*}Undrlyg/{*}OrgnlGrpInfAndCxl")
    original = group.findtext("{*}OrgnlMsgId") if group is not None else None
    case = message.findtext("{*}Case/{*}Id")
    items = [
        f"{element.findtext('{*}OrgnlTxId')} {_reason(element)}".rstrip()
        for element in message.iterfind("{*}Undrlyg/{*}TxInf")
    ]
    if items:
        return f"stop request {case} for {original}: " + ", ".join(items)
    reason = _reason(group) if group is not None else ""
    return (
        f"cancellation request {case} for the whole of {original}{' ' + reason if reason else ''}"
    )


def _items_of(message: Element, amount: str) -> list[str]:
    """pacs.004 / pacs.007: each original item, its amount and reason."""
    items = []
    for element in message.iterfind("{*}TxInf"):
        value = element.find(f"{{*}}{amount}")
        money = _money(value)
        reason = _reason(element)
        items.append(f"{element.findtext('{*}OrgnlTxId')}{money}{' ' + reason if reason else ''}")
    return items


def _payment_return(message: Element) -> str:
    original = message.findtext("{*}OrgnlGrpInf/{*}OrgnlMsgId")
    return f"return of {original}: " + ", ".join(_items_of(message, "RtrdIntrBkSttlmAmt"))


def _payment_reversal(message: Element) -> str:
    original = message.findtext("{*}OrgnlGrpInf/{*}OrgnlMsgId")
    return f"reversal of {original}: " + ", ".join(_items_of(message, "RvsdIntrBkSttlmAmt"))


def _remittance_advice(message: Element) -> str:
    """remt.001: an invoice and the payment it belongs to."""
    parts = []
    for remittance in message.iterfind("{*}RmtInf"):
        document = remittance.find("{*}Strd/{*}RfrdDocInf")
        kind = document.findtext("{*}Tp/{*}CdOrPrtry/{*}Cd") if document is not None else None
        number = document.findtext("{*}Nb") if document is not None else None
        amount = remittance.find("{*}Strd/{*}RfrdDocAmt/{*}RmtdAmt")
        money = _money(amount)
        payment = remittance.findtext("{*}OrgnlPmtInf/{*}Refs/{*}TxId")
        parts.append(
            f"{kind or 'document'} {number or remittance.findtext('{*}RmtId')}{money}"
            f" for payment {payment}"
        )
    return "invoice " + ", ".join(parts) if parts else "remittance advice"


_DESCRIPTIONS: dict[str, Callable[[Element], str]] = {
    "FIToFICstmrCdtTrf": lambda message: _package(message, "CdtTrfTxInf"),
    "FIToFICstmrDrctDbt": lambda message: _package(message, "DrctDbtTxInf"),
    "FIToFIPmtStsRpt": _status_report,
    "PmtRtr": _payment_return,
    "FIToFIPmtRvsl": _payment_reversal,
    "FIToFIPmtCxlReq": _cancellation,
    "RsltnOfInvstgtn": _resolution,
    "RmtAdvc": _remittance_advice,
    "BkToCstmrDbtCdtNtfctn": _net_entries,
    "BkToCstmrStmt": _statement,
    "admi.002.001.01": _message_reject,
    "SysEvtNtfctn": _system_event,
    "RctAck": _acknowledgement,
}
