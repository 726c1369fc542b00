"""Why the core refuses a command: an ISO reason code and a text that says why.

Codes come from ISO external code lists: status reasons (ExternalStatusReason1Code) and,
for answers to camt.056, cancellation rejections (ExternalPaymentCancellationRejection1Code).
"""

from __future__ import annotations

from types import MappingProxyType

REFUSAL_CODES: MappingProxyType[str, str] = MappingProxyType(
    {
        "AB05": "timeout: no result from the creditor's side in time",
        "AB06": "timeout at the instructed agent (reply deadline T+N passed)",
        "AB10": "error at the instructed agent: it rejected the forwarded message (admi.002)",
        "AG01": "transaction forbidden to this requester",
        "AG03": "transaction type not supported for this operation",
        "AGNT": "agent decision: the clearing centre cannot do this in the item's state",
        "AM04": "insufficient net debit cap",
        "ARDT": "already returned",
        "DU01": "duplicate package",
        "NOOR": "original package or transaction not received",
        "RC08": "unknown participant",
        "TM01": "received after the cut-off (deadline passed)",
    }
)


class CommandRefusedError(Exception):
    """A command the core will not carry out; nothing of it was applied."""

    def __init__(self, code: str, text: str) -> None:
        if code not in REFUSAL_CODES:
            raise ValueError(f"unknown refusal code {code}")
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text
