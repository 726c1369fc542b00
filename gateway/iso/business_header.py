"""Checks of the business application header against the document it carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.configuration.participants import ParticipantDirectory

HeaderReport = Callable[[str, str, str], None]
"""(code, text, header field)."""


def check_business_header(
    header: Any,
    message: str,
    document: Any,
    directory: ParticipantDirectory,
    report: HeaderReport,
) -> None:
    """The header names the message it carries and its id; one side is the clearing centre
    and the other a participant; a participant's message names the participant as the
    document's instructing agent."""
    if header.message_definition != message:
        report(
            "FF01",
            f"MsgDefIdr is {header.message_definition} but the document is {message}",
            "message_definition",
        )
    centre = directory.centre_member_id
    from_centre = header.sender == centre
    if not from_centre and directory.kind(header.sender) is None:
        report("RC08", f"header sender {header.sender} is not a participant", "sender")
    if from_centre:
        if directory.kind(header.receiver) is None:
            report("RC08", f"header receiver {header.receiver} is not a participant", "receiver")
    elif header.receiver != centre:
        report(
            "RC08",
            f"header receiver {header.receiver} is not the clearing centre {centre}",
            "receiver",
        )
    if document is None:
        return
    message_id = getattr(document, "message_id", None)
    if message_id is not None and header.business_message_id != message_id:
        report(
            "FF01",
            f"BizMsgIdr {header.business_message_id} differs from the document's message id "
            f"{message_id}",
            "business_message_id",
        )
    instructing = getattr(document, "instructing_agent", None)
    if not from_centre and instructing is not None and header.sender != instructing:
        report(
            "RC08",
            f"header sender {header.sender} is not the package's instructing agent {instructing}",
            "sender",
        )
