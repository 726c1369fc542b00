"""What a business rule is: it sees the decoded header, then each item, then the end.

Rules are created afresh for every message. They report problems through the context with
a location (a header field, or an item and one of its fields); the pipeline turns the
location into a line and an XPath only when a problem is reported, so a clean message pays
nothing for locations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from lxml import etree

from gateway.configuration.participants import ParticipantDirectory
from gateway.configuration.settings import ValidationSettings
from gateway.iso.codec_catalogue import RuleRequirement


@dataclass(frozen=True, slots=True)
class ItemRef:
    """An item: its 1-based position, and its element while it is being checked.

    After the item has been released (in ``on_end``) a rule passes ``element=None`` and the
    item's first line, which it kept.
    """

    index: int
    element: etree._Element | None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Location:
    item: ItemRef | None = None
    field: str | None = None


Report = Callable[[str, str, Location], None]


@dataclass(frozen=True)
class RuleContext:
    directory: ParticipantDirectory
    settings: ValidationSettings
    message: str
    report: Report


class Rule:
    """Base class; subclasses override the hooks they need and declare their fields."""

    name: ClassVar[str]
    requirement: ClassVar[RuleRequirement] = RuleRequirement(frozenset(), frozenset())

    def __init__(self, context: RuleContext) -> None:
        self.context = context

    def report(
        self, code: str, text: str, item: ItemRef | None = None, field: str | None = None
    ) -> None:
        self.context.report(code, text, Location(item, field))

    def on_header(self, header: Any) -> None:
        """Called once with the decoded header command."""

    def on_item(self, item: Any, at: ItemRef) -> None:
        """Called for each decoded item command, in document order."""

    def on_end(self, count: int) -> None:
        """Called after the last item; ``count`` items were seen."""


def requires(header: tuple[str, ...] = (), item: tuple[str, ...] = ()) -> RuleRequirement:
    return RuleRequirement(frozenset(header), frozenset(item))
