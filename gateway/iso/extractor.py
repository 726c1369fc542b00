"""A codec's field map compiled into a one-pass extractor.

All paths of a field map are merged into one tree keyed by Clark name, so an item is read
by a single walk over its children instead of one path search per field (DESIGN §5: about
13 µs against 44 µs per transaction for 16 fields). The first occurrence of a path wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree

from gateway.iso.converters import ConversionError
from gateway.iso.paths import CompiledPath


@dataclass(slots=True)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    leaves: list[tuple[str, Callable[[str], object], str | None]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FieldFailure:
    """A field whose text could not be converted."""

    field: str
    path: str
    reason: str


class Extractor:
    """Reads the fields of one element (an item or the message root) in one walk."""

    def __init__(self, fields: Mapping[str, tuple[CompiledPath, Callable[[str], object]]]) -> None:
        self._fields = dict(fields)
        self._root = _Node()
        self._paths = {name: path for name, (path, _) in fields.items()}
        for name, (path, convert) in fields.items():
            node = self._root
            for step in path.steps[:-1]:
                node = node.children.setdefault(step, _Node())
            leaf = node.children.setdefault(path.steps[-1], _Node())
            leaf.leaves.append((name, convert, path.attribute))

    @property
    def tags(self) -> frozenset[str]:
        """Top-level Clark names the extractor reads (used to skip item subtrees)."""
        return frozenset(self._root.children)

    def subset(self, names: Iterable[str]) -> Extractor:
        """An extractor of some of these fields only (fewer elements visited)."""
        return Extractor({name: self._fields[name] for name in names})

    def path_of(self, field_name: str) -> CompiledPath:
        return self._paths[field_name]

    def extract(self, element: etree._Element) -> tuple[dict[str, object], list[FieldFailure]]:
        values: dict[str, object] = {}
        failures: list[FieldFailure] = []
        self._walk(element, self._root, values, failures)
        return values, failures

    def _walk(
        self,
        element: etree._Element,
        node: _Node,
        values: dict[str, object],
        failures: list[FieldFailure],
    ) -> None:
        children = node.children
        for child in element:
            entry = children.get(child.tag)
            if entry is None:
                continue
            for name, convert, attribute in entry.leaves:
                if name in values:
                    continue
                raw = child.text if attribute is None else child.get(attribute)
                if raw is None:
                    continue
                try:
                    values[name] = convert(raw)
                except ConversionError as error:
                    failures.append(FieldFailure(name, self._paths[name].text, str(error)))
            if entry.children:
                self._walk(child, entry, values, failures)
