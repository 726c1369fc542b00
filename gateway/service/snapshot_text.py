"""A snapshot of the clearing core as JSON text, made a slice at a time.

``json.dumps`` of a snapshot of 55,000 items holds the event loop for 0.15 to 0.3 s, and the
clearing writer with it. ``serialized`` gives the same text, but turns at most
``SERIALIZED_SLICE`` entries into JSON at once (lists and maps at any depth: the items, the
command ids, the item ids of each session) and pauses between two slices.
"""

from __future__ import annotations

import asyncio
import json
from itertools import islice
from typing import Any

SERIALIZED_SLICE = 500
"""Entries turned into JSON at once, at most (about a millisecond)."""
SLICE_PAUSE_SECONDS = 0.001
"""The pause after a slice. Not merely a turn of the event loop: the clearing writer's
transactions run on a thread of their own, which needs the interpreter's lock at every step;
while the loop went straight on to the next slice, each step waited for the interpreter's
switch interval (5 ms), and a transaction took as long as the whole serialization."""


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _large(value: Any) -> bool:
    """Whether ``value`` holds more than ``SERIALIZED_SLICE`` entries, nested ones counted."""
    count = 0
    waiting = [value]
    while waiting:
        current = waiting.pop()
        members = current.values() if isinstance(current, dict) else current
        count += len(current)
        if count > SERIALIZED_SLICE:
            return True
        waiting.extend(member for member in members if isinstance(member, list | dict))
    return False


async def _write(value: Any, parts: list[str]) -> None:
    if not isinstance(value, list | dict) or not _large(value):
        parts.append(_compact(value))
        return
    opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
    parts.append(opening)
    if len(value) > SERIALIZED_SLICE:
        # Many small entries (items, command ids): a slice of them at a time, each without
        # its brackets.
        entries = iter(value.items() if isinstance(value, dict) else value)
        first = True
        while chunk := list(islice(entries, SERIALIZED_SLICE)):
            text = _compact(dict(chunk) if isinstance(value, dict) else chunk)[1:-1]
            parts.append(text if first else "," + text)
            first = False
            await asyncio.sleep(SLICE_PAUSE_SECONDS)
    elif isinstance(value, dict):
        # Few entries, some large (the snapshot, a session): one at a time.
        for number, (key, member) in enumerate(value.items()):
            parts.append(("," if number else "") + _compact(key) + ":")
            await _write(member, parts)
    else:
        for number, member in enumerate(value):
            if number:
                parts.append(",")
            await _write(member, parts)
    parts.append(closing)


async def serialized(state: dict[str, Any]) -> str:
    """``state`` as compact JSON: the text ``json.dumps(state, separators=(",", ":"))``
    gives, made a slice at a time."""
    parts: list[str] = []
    await _write(state, parts)
    return "".join(parts)
