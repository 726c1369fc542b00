"""Transaction ids (TxId) are unique within a message (AM05).

A package may hold a million transactions, so the ids are not kept: each id is reduced to
an 8-byte BLAKE2b digest, stored with its position and line in one of 256 compact arrays
chosen by the digest's low byte (16 bytes per transaction). At the end each array is sorted
on its own and equal neighbours are duplicates; only one small array is expanded at a time.
"""

from __future__ import annotations

from array import array
from hashlib import blake2b
from typing import Any

from gateway.iso.rules.base import ItemRef, Rule, requires

_BUCKETS = 256


class UniqueTransactionIds(Rule):
    name = "unique-transaction-ids"
    requirement = requires(item=("transaction_id",))

    def on_header(self, header: Any) -> None:
        self.digests = [array("Q") for _ in range(_BUCKETS)]
        self.positions = [array("L") for _ in range(_BUCKETS)]
        self.lines = [array("L") for _ in range(_BUCKETS)]

    def on_item(self, item: Any, at: ItemRef) -> None:
        digest = int.from_bytes(
            blake2b(item.transaction_id.encode(), digest_size=8).digest(), "little"
        )
        bucket = digest & 0xFF
        self.digests[bucket].append(digest)
        self.positions[bucket].append(at.index)
        self.lines[bucket].append(at.element.sourceline or 0 if at.element is not None else 0)

    def on_end(self, count: int) -> None:
        found: list[tuple[int, int, int]] = []
        for digests, positions, lines in zip(self.digests, self.positions, self.lines, strict=True):
            if len(digests) < 2:
                continue
            order = sorted(range(len(digests)), key=digests.__getitem__)
            first = order[0]
            for current in order[1:]:
                if digests[current] == digests[first]:
                    found.append((positions[current], positions[first], lines[current]))
                else:
                    first = current
        for position, original, line in sorted(found):
            self.report(
                "AM05",
                f"transaction {position} repeats the TxId of transaction {original}; "
                "TxId must be unique within the message",
                ItemRef(position, None, line),
                "transaction_id",
            )
