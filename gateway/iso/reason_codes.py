"""ISO 20022 external status reason codes used by the gateway, with readable names.

The codes come from the ISO external code list ExternalStatusReason1Code (plus the
technical codes the scheme uses for message rejects). Each problem the gateway reports
carries one of these codes; the text of a problem explains the specific case.
"""

from __future__ import annotations

from types import MappingProxyType

REASON_CODES: MappingProxyType[str, str] = MappingProxyType(
    {
        "AB05": "Timeout: the transaction was stopped because no answer came in time",
        "AB06": "Timeout at the instructed agent",
        "AB10": "Error at the instructed agent: it could not process the forwarded message",
        "AC01": "Incorrect account number",
        "AG03": "Transaction type not supported",
        "AM01": "Zero amount",
        "AM02": "Amount exceeds the maximum allowed",
        "AM03": "Currency not allowed",
        "AM04": "Insufficient funds or net debit cap",
        "AM05": "Duplicate transaction",
        "AM10": "Control sum does not match the transactions",
        "AM12": "Invalid amount",
        "AM18": "Number of transactions is invalid",
        "CH16": "Element content is incorrect",
        "CH17": "Element not admitted",
        "CH21": "Required element missing",
        "DS0A": "Data signature required",
        "DS0B": "Unknown data signature format",
        "DS0C": "Signer certificate revoked",
        "DS0D": "Signer certificate not valid",
        "DS0E": "Incorrect signer certificate",
        "DS0F": "Signer certification authority not valid",
        "DU01": "Duplicate message",
        "FF01": "Invalid file format",
        "FF05": "Invalid local instrument (reply deadline) code",
        "FF06": "Invalid category purpose (business type) code",
        "MD01": "No mandate (agreement)",
        "RC01": "Bank identifier has an incorrect format",
        "RC08": "Clearing system member identifier invalid or missing",
        "RC09": "Debtor agent clearing system member identifier invalid",
        "RC10": "Creditor agent clearing system member identifier invalid",
    }
)
