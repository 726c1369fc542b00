"""Transaction ids (TxId) are unique within a message (AM05).

A package may hold a million transactions, so the ids are not kept: each id is reduced to
its 64-bit string hash (SipHash, keyed per process) and stored with its position and line
in one of 256 compact arrays, chosen by the hash and created when first needed (16 bytes per
transaction). At the end each array is sorted on its own and equal neighbours are
duplicates; only one small array is expanded at a time. Two different ids share a 64-bit
hash with odds of about 1 in 37 million for a million-transaction package.
"""

from __future__ import annotations

from array import array
from typing import Any

from gateway.iso.rules.base import ItemRef, Rule, requires

_BUCKETS = 256
_MASK = (1 << 64) - 1


class UniqueTransactionIds(Rule):
    name = "unique-transaction-ids"
    requirement = requires(item=("transaction_id",))

    def on_header(self, header: Any) -> None:
        self.buckets: dict[int, tuple[array[int], array[int], array[int]]] = {}

    def on_item(self, item: Any, at: ItemRef) -> None:
        digest = hash(item.transaction_id) & _MASK
        bucket = self.buckets.get(digest % _BUCKETS)
        if bucket is None:
            bucket = self.buckets[digest % _BUCKETS] = (array("Q"), array("I"), array("I"))
        digests, positions, lines = bucket
        digests.append(digest)
        positions.append(at.index)
        lines.append((at.element.sourceline or 0) if at.element is not None else 0)

    def on_end(self, count: int) -> None:
        found: list[tuple[int, int, int]] = []
        for digests, positions, lines in self.buckets.values():
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
