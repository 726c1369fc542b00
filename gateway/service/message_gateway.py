"""Submitting a signed message: check it, apply it, deliver what it causes, answer it signed.

``submit`` takes the authenticated participant (from its pinned client certificate) and the
request body, and always returns a signed answer: admi.007 (accepted for processing) or
admi.002 (rejected, with the ISO code, text and the line and XPath of the problem). In order:

1. the business header names the authenticated participant as sender (else 403, DS0E);
2. the XML signature verifies against that participant's pinned certificate (DS0x);
3. the message validates (schema and business rules, as ``isogw validate``);
4. idempotency: the same sender and message id with the same canonical content gets the
   original answer again; with other content, DU01 and nothing changes (409);
5. the message becomes a clearing command, applied by the clearing service; the forward to
   the receiving bank, the receipts to the banks concerned and the answer are written in the
   same transaction as the command, so nothing is answered before it is committed.

A submission refused before step 5 is recorded (with its answer, not its content) before it is
answered. A failure of the storage is raised (HTTP 503); any other failure is answered with a
signed admi.002 MS03 naming an incident (HTTP 500).

``refuse_request`` answers, signed as well, a submission refused for how it was sent before
its content was read: larger than the body cap (413, FF01), not XML (415, FF01), over the rate
limit (429, TA01); and one the storage could not take for now (503, TA01).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from lxml import etree
from pydantic import BaseModel

from gateway.clearing.commands import (
    AdvanceClock,
    ClearingCommand,
    RecordMessage,
    ReturnPayment,
)
from gateway.clearing.core import ClearingCore
from gateway.clearing.events import CommandRefused, Event, ItemChanged
from gateway.clearing.items import payment_item_id
from gateway.commands.inbound import BusinessHeader
from gateway.commands.outbound import (
    AcknowledgedMessage,
    CancellationOutcome,
    CancellationResolution,
    MessageReject,
    ReceiptAcknowledgement,
)
from gateway.iso.codec_catalogue import Codec
from gateway.iso.decoder import decode_tree
from gateway.iso.input_source import InputSource
from gateway.iso.namespaces import HEADER_NAMESPACE as HEADER
from gateway.iso.namespaces import MESSAGE_TAG
from gateway.iso.problems import Verdict
from gateway.iso.safe_parsing import SAFE_PARSE_OPTIONS
from gateway.log_text import sender_text
from gateway.security.signatures import MessageSigner, SignatureProblemError, SignatureVerifier
from gateway.service.clearing_service import Applied, ClearingService
from gateway.service.clock import Clock
from gateway.service.notice_delivery import NoticeDelivery
from gateway.service.notifications import Notice, notices
from gateway.service.receipts import RECEIPT, receipts
from gateway.service.translation import command_id, translate
from gateway.store import messages
from gateway.store.database import storage_unavailable
from gateway.store.messages import Provenance, Refusal
from gateway.store.write_batch import WriteBatch

if TYPE_CHECKING:
    from cryptography import x509

    from gateway.composition import Gateway

REJECT_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:admi.002.001.01"
PROCESS_DIGITS = 7
"""Digits of the process number in a message id (Linux process ids are below 2**22)."""
COUNTER_DIGITS = 13
"""Digits of the per-process counter in a message id (one second never holds 10**13)."""
LOCK_STRIPES = 64
"""Submissions of the same sender and message id are serialized on one of these locks."""
REFUSAL_STATUS = {"DU01": 409}
PACKAGE_MESSAGES = frozenset({"pacs.008.001.08", "pacs.003.001.08"})
"""Packages go on to their receiving bank (the instructed agent)."""
LOG = logging.getLogger("isogw.messages")
LOGS_EVERY_MESSAGE = 5
"""The clearing rules version from which every accepted message is in the command log."""


def gateway_message_id(now: datetime, process: int, count: int) -> str:
    """``G``, the second, the process, a counter: 35 characters (Max35Text), unique across
    the gateway processes sharing a ledger and across restarts (a restart takes longer than a
    second)."""
    count %= 10**COUNTER_DIGITS
    return f"G{now:%Y%m%d%H%M%S}{process:0{PROCESS_DIGITS}d}{count:0{COUNTER_DIGITS}d}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    accepted: bool
    code: str | None = None
    message_id: str | None = None
    """The submitted message's id, for logs."""
    signature_checked: bool = True
    """False when the answer came before the sender's signature was verified (it failed, the
    sender is not the certificate's owner, or there was no header to check it by)."""
    kept: bool = False
    """The ledger keeps this answer with the submission (it reached the clearing core);
    otherwise a refusal is recorded on its own."""


@dataclass(frozen=True)
class RefusedRequest:
    """A submission refused for how it was sent, before its content was read (or, for 503,
    before anything was applied): answered with a signed admi.002 all the same, which names
    no message (its ``RltdRef`` is ``UNKNOWN``)."""

    status: int
    code: str
    text: str
    body_bytes: int
    """Its size: as read, or as the request declared it when it was not read (0 unknown)."""
    body_sha256: str = ""
    """Of the bytes read ("" when the body was not read)."""
    recorded: bool = True
    """Kept with the refusals before it is answered. Not for 429, so that a flood does not
    write a record per request, nor for 503, when the storage is what failed."""


Notify = Callable[[set[str]], None]


class MessageGateway:
    def __init__(
        self,
        gateway: Gateway,
        clearing: ClearingService,
        signer: MessageSigner,
        verifier: SignatureVerifier,
        clock: Clock,
        process: int,
        notify: Notify = lambda participants: None,
    ) -> None:
        """``process`` tells this gateway process's message ids from those of the others
        sharing the ledger (its process id: unique among the processes running on the host,
        as the SQLite ledger requires them to be)."""
        if not 0 <= process < 10**PROCESS_DIGITS:
            raise ValueError(f"process number {process} is not 0 to {10**PROCESS_DIGITS - 1}")
        self._gateway = gateway
        self._process = process
        self._clearing = clearing
        self._signer = signer
        self._verifier = verifier
        self._clock = clock
        self._notify = notify
        self._centre = gateway.directory.centre_member_id
        self._counter = itertools.count(1)
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        encoding = gateway.settings.encoding
        self.notices = NoticeDelivery(
            clearing,
            self.envelope,
            encoding.sign_after_commit_entries,
            encoding.signing_sweep_batch,
        )

    def now(self) -> datetime:
        return self._clock.now()

    def use_certificates(
        self,
        certificates: Mapping[str, x509.Certificate | Sequence[x509.Certificate]],
        authorities: Sequence[x509.Certificate] | None = None,
    ) -> None:
        """Check the signatures of the messages from now on against ``certificates`` (the
        participants' certificates reloaded), issued by one of ``authorities`` (the CAs of a
        reloaded ``ca.pem``; the same CAs if None); a message being checked finishes with the
        ones it started with."""
        self._verifier = self._verifier.with_pins(certificates, authorities)

    def use_signer(self, signer: MessageSigner) -> None:
        """Sign with ``signer`` from now on (the gateway's certificate renewed)."""
        self._signer = signer

    def set_notify(self, notify: Notify) -> None:
        self._notify = notify

    # Answers and delivered messages ------------------------------------------------------

    def new_message_id(self) -> str:
        return gateway_message_id(self._clock.now(), self._process, next(self._counter))

    def _header(self, recipient: str, message: str, message_id: str) -> BusinessHeader:
        return BusinessHeader(
            sender=self._centre,
            receiver=recipient,
            business_message_id=message_id,
            message_definition=message,
            created_at=self._clock.now(),
        )

    def envelope(self, recipient: str, document: BaseModel, message: str, message_id: str) -> bytes:
        header = self._header(recipient, message, message_id)
        return self._signer.sign_element(self._gateway.encoder.message_element(header, document))

    def _reject(
        self,
        recipient: str,
        reference: str,
        code: str,
        text: str,
        location: str | None = None,
        extra: str | None = None,
        message_id: str | None = None,
    ) -> bytes:
        reject = MessageReject(
            related_reference=reference[:35] or "UNKNOWN",
            reason_code=code,
            rejected_at=self._clock.now(),
            error_location=location[:350] if location else None,
            reason_text=text[:350],
            additional_data=extra,
        )
        return self.envelope(
            recipient, reject, "admi.002.001.01", message_id or self.new_message_id()
        )

    def _accept(self, recipient: str, reference: str, message: str) -> bytes:
        acknowledgement = ReceiptAcknowledgement(
            message_id=self.new_message_id(),
            created_at=self._clock.now(),
            reports=(AcknowledgedMessage(reference=reference, message_name=message),),
        )
        return self.envelope(
            recipient, acknowledgement, "admi.007.001.01", acknowledgement.message_id
        )

    def forward(
        self, recipient: str, original: etree._Element, message: str, message_id: str
    ) -> bytes:
        """The original document (a copy: the submission's tree is left as it was) in a new
        envelope from the centre, signed by the gateway."""
        document = copy.deepcopy(original[-1] if original.tag == MESSAGE_TAG else original)
        header = self._header(recipient, message, message_id)
        return self._signer.sign_element(self._gateway.encoder.envelope_around(header, document))

    # Submission ----------------------------------------------------------------------

    async def submit(
        self,
        participant: str,
        body: bytes,
        client_address: str = "unknown",
        certificate_sha256: str = "",
    ) -> Answer:
        """The signed answer to a submission from ``participant`` (the owner of the client
        certificate whose SHA-256 is ``certificate_sha256``, at ``client_address``: both kept
        with the submission for audit). A failure of the storage is raised (nothing was
        applied; the same submission may succeed later: HTTP 503). Any other failure is the
        gateway's own: answered 500 with a signed admi.002 MS03 naming an incident that the
        log line with the traceback carries, since sending the same message again would fail
        the same way."""
        received_at = self._clock.now()
        reference = ""
        try:
            parsed = _parse_leniently(body)
            header = _header_fields(parsed)
            reference = header.get("message_id", "")
            answer = await self._submit(
                participant, body, parsed, header, client_address, certificate_sha256
            )
        except Exception as error:
            if storage_unavailable(error):
                raise
            answer = self._internal_failure(participant, reference)
        if not answer.accepted and not answer.kept:
            refusal = Refusal(
                sender=participant,
                message_id=(answer.message_id or reference)[:35],
                received_at=received_at.isoformat(),
                status=answer.status,
                reason_code=answer.code or "NARR",
                client_address=client_address,
                certificate_sha256=certificate_sha256,
                body_sha256=hashlib.sha256(body).hexdigest(),
                body_bytes=len(body),
                answer=answer.body,
            )
            await self._record_refusal(refusal)
        return answer

    async def refuse_request(
        self,
        participant: str,
        refused: RefusedRequest,
        client_address: str = "unknown",
        certificate_sha256: str = "",
    ) -> Answer:
        """The signed admi.002 for a submission refused before its content was read; recorded
        first when ``refused.recorded`` (a failure of the storage then is raised: 503)."""
        answer = Answer(
            refused.status,
            self._reject(participant, "", refused.code, refused.text),
            False,
            refused.code,
            signature_checked=False,
        )
        if refused.recorded:
            await self._record_refusal(
                Refusal(
                    sender=participant,
                    message_id="",
                    received_at=self._clock.now().isoformat(),
                    status=refused.status,
                    reason_code=refused.code,
                    client_address=client_address,
                    certificate_sha256=certificate_sha256,
                    body_sha256=refused.body_sha256,
                    body_bytes=refused.body_bytes,
                    answer=answer.body,
                )
            )
        return answer

    async def _record_refusal(self, refusal: Refusal) -> None:
        """Kept before the refusal is answered, as everything the gateway answers. The storage
        being unavailable is raised (503: the bank sends again); a fault of the gateway's own
        is logged, and the answer still goes out."""

        async def record(writes: WriteBatch, applied: Applied) -> None:
            writes.refuse(refusal)

        try:
            await self._clearing.execute(lambda core: None, after=record)
        except Exception as error:
            if storage_unavailable(error):
                raise
            LOG.exception(
                "event=refusal-not-recorded participant=%s message_id=%s code=%s",
                refusal.sender,
                sender_text(refusal.message_id or "-"),
                refusal.reason_code,
            )

    def _internal_failure(self, participant: str, reference: str) -> Answer:
        incident = self.new_message_id()
        LOG.exception(
            "event=internal-error incident=%s participant=%s message_id=%s",
            incident,
            participant,
            sender_text(reference or "-"),
        )
        return Answer(
            500,
            self._reject(
                participant,
                reference,
                "MS03",
                f"internal error in the gateway, incident {incident}: this submission changed "
                "nothing. Sending it again will fail the same way until the clearing centre has "
                "fixed the fault; give its operators the incident reference",
                message_id=incident,
            ),
            False,
            "MS03",
            message_id=reference or None,
            signature_checked=False,
        )

    async def _submit(
        self,
        participant: str,
        body: bytes,
        parsed: etree._Element | None,
        header: dict[str, str],
        client_address: str,
        certificate_sha256: str,
    ) -> Answer:
        """``parsed``: the body's tree (None if it is not well-formed); ``header``: its
        business header's sender and message id, read before any check."""
        now = self._clock.now()
        reference = header.get("message_id", "")
        if not header.get("sender"):
            # Not well-formed, or no business header naming a sender: say what is wrong with
            # the file (line, XPath, code), as the validator does, rather than "no sender".
            return self._unreadable(participant, reference, body, parsed)
        if header.get("sender") != participant:
            return Answer(
                403,
                self._reject(
                    participant,
                    reference,
                    "DS0E",
                    f"the business header names sender {header.get('sender')!r}, but the "
                    f"client certificate is {participant}'s",
                    "/Message/AppHdr/Fr",
                ),
                False,
                "DS0E",
                signature_checked=False,
            )
        try:
            verified = self._verifier.check(body, participant, now, parsed)
        except SignatureProblemError as problem:
            return Answer(
                400,
                self._reject(
                    participant, reference, problem.code, problem.text, "/Message/AppHdr/Sgntr"
                ),
                False,
                problem.code,
                signature_checked=False,
            )
        source = InputSource.from_bytes(body, "request")
        if not self._large(body):
            # A single message validates in well under a millisecond: a thread would only add
            # switching (the GIL gives no parallelism); large packages go to a thread.
            verdict = self._gateway.validator.validate(source, parsed)
        else:
            verdict = await asyncio.to_thread(self._gateway.validator.validate, source)
        if not verdict.valid:
            return Answer(
                400, self._invalid(participant, reference, verdict), False, verdict.problems[0].code
            )
        message_id = verdict.message_id or reference
        message = verdict.message_type or ""
        codec = self._gateway.codecs.for_message(message)
        if codec is None or codec.definition.decode is None:
            return Answer(
                400,
                self._not_from_participants(participant, reference, message, verified.root),
                False,
                "AG01",
            )
        content_hash = verified.content_sha256
        provenance = Provenance(client_address, certificate_sha256, verified.signature_method)
        lock = self._locks[hash((participant, message_id)) % LOCK_STRIPES]
        async with lock:
            answer = await self._apply(
                participant, verified.root, codec, message_id, content_hash, now, body, provenance
            )
        return replace(answer, message_id=message_id)

    def _large(self, body: bytes) -> bool:
        """Over ``parser.tree_max_bytes``: its validation, decoding and forward go to a thread
        (a small message's would take less than the switching)."""
        return len(body) > self._gateway.settings.parser.tree_max_bytes

    def _unreadable(
        self, participant: str, reference: str, body: bytes, parsed: etree._Element | None
    ) -> Answer:
        verdict = self._gateway.validator.validate(InputSource.from_bytes(body, "request"), parsed)
        if not verdict.valid:
            return Answer(
                400,
                self._invalid(participant, reference, verdict),
                False,
                verdict.problems[0].code,
                signature_checked=False,
            )
        # A valid bare Document: fine for ``isogw validate``, but what is submitted carries
        # the business header and its signature.
        return Answer(
            400,
            self._reject(
                participant,
                reference,
                "FF01",
                "the message has no business header (AppHdr) naming its sender; submit an "
                "envelope: AppHdr then Document, signed in AppHdr/Sgntr (`isogw submit` wraps "
                "and signs a bare Document)",
                "/Message/AppHdr",
            ),
            False,
            "FF01",
            signature_checked=False,
        )

    def _not_from_participants(
        self, participant: str, reference: str, message: str, root: etree._Element
    ) -> bytes:
        """A message only the centre sends (notifications, statements, system events,
        acknowledgements): valid, but a participant submitting it would be told nothing
        happened while nothing did."""
        hint = (
            "; acknowledge outbox messages with POST /v1/outbox/ack"
            if message.startswith("admi.007")
            else ""
        )
        element = root.find(f"{{{HEADER}}}AppHdr/{{{HEADER}}}MsgDefIdr")
        line = element.sourceline if element is not None else None
        return self._reject(
            participant,
            reference,
            "AG01",
            f"{message} is sent by the clearing centre only; a participant cannot submit it{hint}",
            f"line {line}: /Message/AppHdr/MsgDefIdr" if line else "/Message/AppHdr/MsgDefIdr",
        )

    def _invalid(self, participant: str, reference: str, verdict: Verdict) -> bytes:
        first = verdict.problems[0]
        others = "; ".join(
            f"line {problem.line} {problem.path}: {problem.code} {problem.text}"
            for problem in verdict.problems[1:10]
        )
        return self._reject(
            participant,
            reference,
            first.code,
            first.text,
            f"line {first.line}: {first.path}",
            others or None,
        )

    async def _apply(
        self,
        participant: str,
        root: etree._Element,
        codec: Codec,
        message_id: str,
        content_hash: str,
        now: datetime,
        body: bytes,
        provenance: Provenance,
    ) -> Answer:
        """``codec``: the message's, with a [decode] section (``submit`` refuses the others)."""
        core = self._clearing.core
        if command_id(participant, message_id) in core.seen:
            return await self._repeated(participant, message_id, content_hash)
        if (
            core.retired_through is not None or core.rules < LOGS_EVERY_MESSAGE
        ) and await self._stored(participant, message_id):
            # The core has forgotten the ids of commands of retired days, and a ledger of rules
            # before 5 did not log messages that clear nothing: the record of every message
            # submitted (kept for audit) still knows such an id.
            return await self._repeated(participant, message_id, content_hash)
        message = codec.message
        # The whole tree is in memory already (it was parsed for the signature): decode it
        # there, whatever the size, rather than streaming the body a second time. A large
        # package's decoding and forward take a while (0.5 s and 0.2 s for 15,000 items): in a
        # thread, this process's event loop goes on serving the other banks meanwhile.
        large = self._large(body)
        decoded = (
            await asyncio.to_thread(decode_tree, root, codec) if large else decode_tree(root, codec)
        )
        header, items = decoded[0], decoded[1:]
        outcome: dict[str, Any] = {}
        delivered: set[str] = set()
        later: list[Notice] = []  # long messages, signed after the commit
        translated: dict[str, Any] = {}
        # What does not depend on the clearing outcome is built and signed before the writer
        # takes the database lock (several gateway processes take turns holding it): the
        # acceptance, and the forward of a package to its receiving bank. Used only if the
        # command is accepted and the recipient is the one the command names.
        accepted = self._accept(participant, message_id, message)
        forwards: dict[str, bytes] = {}
        if message in PACKAGE_MESSAGES:
            receiver = str(getattr(header, "instructed_agent", "") or "")
            if receiver:
                forward = partial(self.forward, receiver, root, message, message_id)
                forwards[receiver] = await asyncio.to_thread(forward) if large else forward()

        def command(core: ClearingCore) -> Any:
            # Translated in the writer, against the core as it is at that moment. A message
            # that clears nothing is logged all the same: its id is taken.
            translated["command"] = translate(
                message, header, items, participant, core, now, message_id
            )
            return translated["command"] or RecordMessage(
                command_id=command_id(participant, message_id),
                at=now,
                sender=participant,
                message=message,
            )

        async def after(writes: WriteBatch, applied: Applied) -> None:
            # The answer is about the command's own events. What the time passing up to it
            # caused (a real-time item expired a moment ago, before the next tick) is delivered
            # whatever the answer: the banks are owed those receipts either way.
            own = applied.own
            refused = [event for event in own if isinstance(event, CommandRefused)]
            later.clear()  # a group commit that failed is tried again one command at a time
            if message == "camt.056.001.08":
                self._resolve(writes, participant, header, own, now, delivered, later)
            if refused and not _partly_applied(own):
                status = REFUSAL_STATUS.get(refused[0].code, 400)
                answer = self._reject(participant, message_id, refused[0].code, refused[0].text)
                outcome.update(status=status, answer=answer, accepted=False, code=refused[0].code)
                self._deliver_caused(writes, applied.passed, now, delivered, later)
            else:
                answer = accepted
                outcome.update(status=200, answer=answer, accepted=True, code=None)
                self._deliver_forward(
                    writes,
                    participant,
                    root,
                    message,
                    message_id,
                    translated["command"],
                    items,
                    now,
                    delivered,
                    header,
                    forwards,
                )
                self._deliver_caused(writes, applied.events, now, delivered, later)
            writes.answer(
                participant,
                message_id,
                content_hash,
                message,
                now,
                outcome["status"],
                outcome["answer"],
                body,
                provenance,
            )

        await self._clearing.execute(command, after=after)
        if not outcome:  # the log already held this message (an earlier or concurrent copy)
            return await self._repeated(participant, message_id, content_hash)
        try:
            if message == "admi.002.001.01" and outcome["accepted"]:
                self._log_participant_reject(participant, header, translated["command"])
            self._notify(delivered)
        except Exception:  # committed: the answer stands (outbox polls look again anyway)
            LOG.exception(
                "event=after-commit-failed participant=%s message_id=%s",
                participant,
                sender_text(message_id),
            )
        await self._sign_later(later)
        return Answer(
            outcome["status"], outcome["answer"], outcome["accepted"], outcome["code"], kept=True
        )

    def _log_participant_reject(self, participant: str, reject: Any, command: Any) -> None:
        """A bank could not process something the centre sent it: operators should know."""
        if command is None:
            result = "nothing changed (not a package forwarded to this bank)"
        else:
            package = self._clearing.core.packages[command.package_id]
            result = (
                f"real-time items rejected AB10 and the reject forwarded to {package.sender}"
                if package.real_time
                else f"forwarded to {package.sender}; the receipt is still awaited"
            )
        LOG.warning(
            "event=participant-reject participant=%s reference=%s code=%s location=%s "
            "result=%s text=%s",
            participant,
            sender_text(reject.related_reference),
            reject.reason_code,
            sender_text(reject.error_location or "-"),
            json.dumps(result),
            sender_text(reject.reason_text),
        )

    async def _stored(self, participant: str, message_id: str) -> messages.StoredAnswer | None:
        async with self._clearing.reader.connect() as connection:
            return await messages.find_inbound(connection, participant, message_id)

    async def _repeated(self, participant: str, message_id: str, content_hash: str) -> Answer:
        """The original answer for the same content; DU01 for other content."""
        stored = await self._stored(participant, message_id)
        if stored is not None and stored.content_hash == content_hash:
            accepted = stored.status == 200
            code = None if accepted else _rejection_code(stored.answer)
            return Answer(stored.status, stored.answer, accepted, code, kept=True)
        return Answer(
            409,
            self._reject(
                participant,
                message_id,
                "DU01",
                f"message id {message_id} was already used by {participant} for other content; "
                "nothing was changed",
            ),
            False,
            "DU01",
        )

    def _deliver_forward(
        self,
        writes: WriteBatch,
        participant: str,
        root: etree._Element,
        message: str,
        message_id: str,
        command: Any,
        items: list[BaseModel],
        now: datetime,
        delivered: set[str],
        header: BaseModel | None = None,
        prepared: dict[str, bytes] | None = None,
    ) -> None:
        for recipient in self._forward_recipients(message, command, items, header):
            payload = (prepared or {}).get(recipient) or self.forward(
                recipient, root, message, message_id
            )
            writes.deliver(recipient, message_id, message, payload, now)
            delivered.add(recipient)

    def _forward_recipients(
        self, message: str, command: Any, items: list[BaseModel], header: BaseModel | None = None
    ) -> list[str]:
        """Who receives the original: the receiving bank of a package; the other party of a
        cancellation, stop or reversal; the clearing bank of the payer of the items a return
        gives back (pacs.004); the clearing bank of each invoice's payer bank
        (remt.001); the sender of a package its receiving bank rejected (admi.002). A bank's
        own receipt travels as the centre's receipts instead."""
        if message in PACKAGE_MESSAGES:
            return [str(command.receiver)]
        if message == "camt.029.001.09" and header is not None:
            # A bank's answer to a stop or cancellation goes on to the bank that asked.
            fields: Any = header
            targets = (fields.case_creator, fields.instructed_agent)
            return [
                bank
                for bank in dict.fromkeys(targets)
                if bank and bank != self._centre and self._gateway.directory.kind(bank)
            ][:1]
        if message == "remt.001.001.05":
            directory = self._gateway.directory
            banks = (
                directory.clearing_party(str(getattr(item, "payer_agent", ""))) for item in items
            )
            return sorted({bank for bank in banks if bank})
        if message == "pacs.002.001.10" or command is None:
            return []
        core = self._clearing.core
        if isinstance(command, ReturnPayment):
            # The returned funds go to the original payer's clearing bank: it is told why.
            returned = (
                core.items.get(payment_item_id(command.return_id, item.transaction_id))
                for item in command.items
            )
            return sorted({item.payee for item in returned if item is not None})
        package = core.packages.get(getattr(command, "package_id", ""))
        if package is None:
            return []
        requester = getattr(command, "requester", None)
        return [package.receiver if requester == package.sender else package.sender]

    def _resolve(
        self,
        writes: WriteBatch,
        requester: str,
        request: BaseModel,
        events: list[Event],
        now: datetime,
        delivered: set[str],
        later: list[Notice],
    ) -> None:
        """The camt.029 paired with a camt.056: CNCL with the items cancelled or stopped, or
        RJCR with the reason the centre refused it."""
        fields: Any = request
        refused = [event for event in events if isinstance(event, CommandRefused)]
        core = self._clearing.core
        done = [
            core.items[event.item_id].transaction_id
            for event in events
            if isinstance(event, ItemChanged) and event.state in ("cancelled", "stopped")
        ]
        resolution = CancellationResolution(
            message_id=self.new_message_id(),
            assigner=self._centre,
            assignee=requester,
            created_at=now,
            confirmation="RJCR" if refused else "CNCL",
            original_message_id=fields.original_message_id,
            original_message_type=fields.original_message_type,
            group_status="RJCR" if refused else "ACCR",
            reason_code=refused[0].code if refused else None,
            reason_text=refused[0].text[:105] if refused else None,
            transactions=tuple(
                CancellationOutcome(original_transaction_id=transaction, status="ACCR")
                for transaction in done
            ),
        )
        notice = Notice(requester, "camt.029.001.09", resolution.message_id, resolution)
        self.notices.deliver(writes, notice, now, later)
        delivered.add(requester)

    def _deliver_caused(
        self,
        writes: WriteBatch,
        events: list[Event],
        now: datetime,
        delivered: set[str],
        later: list[Notice],
    ) -> None:
        """What the events owe the banks: pacs.002 receipts for items that changed state,
        then the notices of sessions and days (camt.054 nets, admi.004 events, camt.053
        statements). Long ones are added to ``later``, to sign after the commit."""
        core = self._clearing.core
        owed = [
            Notice(receipt.recipient, RECEIPT, receipt.report.message_id, receipt.report)
            for receipt in receipts(events, core, now, self.new_message_id)
        ]
        owed += notices(events, core.directory, now, core.zone, self.new_message_id)
        for notice in owed:
            self.notices.deliver(writes, notice, now, later)
            delivered.add(notice.recipient)

    async def tick(self) -> list[Event]:
        """Let time pass in the clearing core (deadlines, sessions, day switch) and deliver
        the receipts it causes (an expired real-time item: RJCT AB05 to both banks)."""
        now = self._clock.now()
        command = AdvanceClock(command_id=f"tick:{now.isoformat()}:{next(self._counter)}", at=now)
        applied, _ = await self.operate(command)
        return applied.events

    async def operate(self, command: ClearingCommand) -> tuple[Applied, set[str]]:
        """Carry out a command no bank sent (the time passing, an operator's command) and
        deliver, in the same transaction, the messages its effects cause: items a raised cap
        nets (ACSP), items whose deadline passed (RJCT AB05), the notices and statements of a
        close or a day switch. Returns what it did (nothing
        for a command id already logged) and the banks with new messages in their outboxes."""
        now = self._clock.now()
        delivered: set[str] = set()
        later: list[Notice] = []
        done: list[Applied] = []

        async def after(writes: WriteBatch, applied: Applied) -> None:
            delivered.clear()  # a batch that failed is tried again alone
            later.clear()
            self._deliver_caused(writes, applied.events, now, delivered, later)
            done[:] = [applied]

        await self._clearing.execute(command, after=after)
        self._notify(delivered)
        await self._sign_later(later)
        return (done[0] if done else Applied()), delivered

    async def _sign_later(self, later: list[Notice]) -> None:
        """Sign the long messages a committed command delivered as documents, then wake their
        banks again (woken already for what the commit made readable: a package's receiving
        bank need not wait for the sender's receipt). What cannot be signed now is logged and
        left to a sweep."""
        if later:
            await self.notices.sign(later)
            self._notify({notice.recipient for notice in later})


def _partly_applied(events: list[Event]) -> bool:
    """A receipt may refuse some answers (too late) and apply others."""
    return any(not isinstance(event, CommandRefused) for event in events)


def _parse_leniently(body: bytes) -> etree._Element | None:
    """One safe parse of the submitted bytes, shared by the checks that read the tree."""
    try:
        return etree.fromstring(body, etree.XMLParser(**SAFE_PARSE_OPTIONS))
    except etree.XMLSyntaxError:
        return None


def _rejection_code(answer: bytes) -> str | None:
    """The reason code of a stored admi.002 (our own signed answer), for logs and metrics."""
    root = _parse_leniently(answer)
    code = root.findtext(f".//{{{REJECT_NAMESPACE}}}RjctgPtyRsn") if root is not None else None
    return code or None


def _header_fields(root: etree._Element | None) -> dict[str, str]:
    """Sender and message id from the business header, read before any check."""
    header = root.find(f"{{{HEADER}}}AppHdr") if root is not None else None
    if header is None:
        return {}
    path = "/".join(
        f"{{{HEADER}}}{step}" for step in ("Fr", "FIId", "FinInstnId", "ClrSysMmbId", "MmbId")
    )
    return {
        "sender": (header.findtext(path) or "").strip(),
        "message_id": (header.findtext(f"{{{HEADER}}}BizMsgIdr") or "").strip(),
    }
