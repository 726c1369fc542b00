"""Random mutations of valid messages, for the tests that bad input never crashes anything:
values replaced, elements dropped or repeated, bytes changed."""

from __future__ import annotations

import random

from lxml import etree

VALUES = [
    "",
    " ",
    "0",
    "0.00",
    "-1.00",
    "0.001",
    "1e3",
    "99999999999999.99",
    "50000.01",
    "NaN",
    "2026-02-30",
    "2026-11-23T25:00:00",
    "9999-12-31",
    "102100099996",
    "105100000017",
    "301290000007",
    "999999999999",
    "000000000000",
    "C100",
    "D100",
    "E100",
    "ACSP",
    "RJCT",
    "XXXX",
    "USD",
    "x" * 141,
    "中文名称",
    "a&b<c>",
    " 1.00 ",
]
BYTES = [b"<", b"&", b"]]>", b"<!---->", b"\xff", b"\x00", b"</Document>", b"<X/>", b'"']


def mutate_values(rng: random.Random, message: bytes) -> bytes:
    root = etree.fromstring(message)
    leaves = [
        element
        for element in root[-1].iter()
        if isinstance(element.tag, str) and len(element) == 0 and (element.text or "").strip()
    ]
    for _ in range(rng.randint(1, 3)):
        element = rng.choice(leaves)
        choice = rng.random()
        if choice < 0.1 and element.attrib:
            element.set(rng.choice(list(element.attrib)), rng.choice(VALUES))
        elif choice < 0.2 and element.getparent() is not None:
            element.addnext(etree.fromstring(etree.tostring(element)))
        elif choice < 0.3 and element.getparent() is not None:
            element.getparent().remove(element)  # type: ignore[union-attr]
            leaves.remove(element)
            if not leaves:
                break
        else:
            element.text = rng.choice(VALUES)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def mutate_bytes(rng: random.Random, message: bytes) -> bytes:
    data = bytearray(message)
    for _ in range(rng.randint(1, 3)):
        start = rng.randrange(len(data))
        end = min(len(data), start + rng.randint(1, 40))
        choice = rng.randrange(3)
        if choice == 0:
            del data[start:end]
        elif choice == 1:
            data[start:start] = data[start:end]
        else:
            data[start:start] = rng.choice(BYTES)
    return bytes(data)
