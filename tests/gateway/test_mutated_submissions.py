"""Bad input never crashes the gateway and never half-applies: every valid sample, wrapped and
signed by its instructing bank, is mutated (values replaced, elements dropped or repeated,
bytes changed) and submitted, most of the time signed again so the mutation reaches the
validation, decoding and clearing behind the signature check. Each answer must be a signed
admi.007 or admi.002 whose reason code is the one reported, and a rejection must leave the
outboxes and the participants' positions as they were."""

from __future__ import annotations

import contextlib
import random
import re
from collections import Counter
from datetime import UTC, datetime

from lxml import etree

from gateway.participant_cli import envelope
from gateway.security.signatures import SignatureVerifier, XmlDsigSigner
from gateway.store import messages
from tests.conftest import SAMPLES
from tests.gateway.conftest import CENTRE, Harness
from tests.mutations import mutate_bytes, mutate_values

MUTATIONS = 400
SEED = 20261123
STATUSES = {200, 400, 403, 409}


async def snapshot(harness: Harness) -> tuple[dict[str, list[str]], dict[str, int]]:
    """What a submission can change: each outbox (the types of its waiting messages) and each
    participant's net position."""
    core = harness.runtime.clearing.core
    participants = harness.runtime.gateway.directory.participants
    outboxes: dict[str, list[str]] = {}
    async with harness.runtime.clearing.engine.connect() as connection:
        for code in (entry.code for entry in (*participants.direct, *participants.special)):
            waiting = await messages.read_outbox(connection, code, 0, 1_000)
            outboxes[code] = [message.message_type for message in waiting]
    return outboxes, {code: account.net_position for code, account in core.accounts.items()}


async def test_mutated_submissions_are_answered_with_a_code_and_change_nothing(
    harness: Harness,
) -> None:
    gateway = harness.runtime.gateway
    signers: dict[str, XmlDsigSigner] = {}
    messages_by_sender: list[tuple[str, bytes]] = []
    kinds: set[str] = set()
    for path in sorted(SAMPLES.rglob("valid-*.xml")):
        if path.parent.name.startswith("head."):
            continue  # a business header alone
        text = path.read_bytes()
        # The sender: the header's Fr in an envelope, else the first bank the document names
        # (instructing agent, assigner); messages only the centre sends are left out.
        banks = [code.decode() for code in re.findall(rb"<MmbId>(\d{12})</MmbId>", text)]
        sender = next((code for code in banks if gateway.directory.kind(code)), CENTRE)
        if sender == CENTRE:
            continue
        kinds.add(path.parent.name)
        if sender not in signers:
            pair = harness.keys.participant(sender)
            signers[sender] = XmlDsigSigner(
                pair.key_path.read_bytes(), pair.certificate_path.read_bytes()
            )
        messages_by_sender.append((sender, envelope(gateway, sender, text, str(path))))
    assert len(kinds) >= 8, kinds
    verifier = SignatureVerifier({CENTRE: harness.keys.gateway.certificate()})
    rng = random.Random(SEED)
    outcomes: Counter[str] = Counter()
    for _ in range(MUTATIONS):
        sender, message = rng.choice(messages_by_sender)
        body = mutate_values(rng, message) if rng.random() < 0.7 else mutate_bytes(rng, message)
        if rng.random() < 0.8:
            # Not an envelope any more (or not XML): sent as it is.
            with contextlib.suppress(ValueError, etree.XMLSyntaxError):
                body = signers[sender].sign(body)
        before = await snapshot(harness)
        answer = await harness.runtime.messages.submit(sender, body)
        assert answer.status in STATUSES, (answer.status, body)
        root = verifier.verify(answer.body, CENTRE, datetime.now(UTC))
        if answer.status == 200:
            assert answer.accepted and root.find(".//{*}RctAck") is not None
            outcomes["accepted"] += 1
            continue
        assert not answer.accepted
        assert answer.code is not None and re.fullmatch("[A-Z0-9]{4}", answer.code), answer
        assert root.findtext(".//{*}RjctgPtyRsn") == answer.code
        outboxes, net_positions = await snapshot(harness)
        assert net_positions == before[1], (answer.code, body)
        if b"FIToFIPmtCxlReq" in body and outboxes[sender] != before[0][sender]:
            # A refused cancellation or stop request also gets its paired camt.029 (RJCR).
            assert outboxes[sender] == [*before[0][sender], "camt.029.001.09"]
            outboxes[sender] = before[0][sender]
        assert outboxes == before[0], (answer.code, body)
        outcomes[answer.code] += 1
    # The mutations reach past the signature: schema, business rules and the clearing core
    # each reject some, and some mutated messages are still valid and accepted.
    assert outcomes["accepted"] > 0 and outcomes["FF01"] > 0 and outcomes["DS0A"] > 0
    assert len(outcomes) >= 6, outcomes
