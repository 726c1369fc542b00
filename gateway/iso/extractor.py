"""A codec's field map compiled into a one-pass extractor.

All paths of a field map are merged into one tree keyed by Clark name, and the tree is then
compiled into a Python function with one nested loop per level, so an item is read by a
single walk over its children: no path search per field (DESIGN §5: about 13 µs against 44 µs
per transaction for 16 fields), no recursion, no per-child dictionary lookups. The first
occurrence of a path wins. ``source`` shows the generated code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree

from gateway.iso.converters import ConversionError
from gateway.iso.paths import CompiledPath

Extraction = tuple[dict[str, object], list["FieldFailure"]]


@dataclass(slots=True)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    leaves: list[tuple[str, str | None]] = field(default_factory=list)
    """(field name, attribute or None for the element text)."""


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
        self._paths = {name: path for name, (path, _) in fields.items()}
        root = _Node()
        for name, (path, _) in fields.items():
            node = root
            for step in path.steps:
                node = node.children.setdefault(step, _Node())
            node.leaves.append((name, path.attribute))
        self.source, self._function = _compile(root, fields)

    def subset(self, names: Iterable[str]) -> Extractor:
        """An extractor of some of these fields only (fewer elements visited)."""
        return Extractor({name: self._fields[name] for name in names})

    def path_of(self, field_name: str) -> CompiledPath:
        return self._paths[field_name]

    def extract(self, element: etree._Element) -> Extraction:
        return self._function(element)


def _compile(
    root: _Node, fields: Mapping[str, tuple[CompiledPath, Callable[[str], object]]]
) -> tuple[str, Callable[[etree._Element], Extraction]]:
    constants: dict[str, object] = {
        "ConversionError": ConversionError,
        "FieldFailure": FieldFailure,
    }
    lines = ["def extract(element):", "    values = {}", "    failures = []"]

    def constant(value: object, hint: str) -> str:
        name = f"{hint}_{len(constants)}"
        constants[name] = value
        return name

    def emit(node: _Node, parent: str, depth: int, indent: str) -> None:
        child, tag = f"child{depth}", f"tag{depth}"
        lines.append(f"{indent}for {child} in {parent}:")
        lines.append(f"{indent}    {tag} = {child}.tag")
        keyword = "if"
        for step, below in node.children.items():
            tag_constant = constant(step, "TAG_" + step.rpartition("}")[2])
            lines.append(f"{indent}    {keyword} {tag} == {tag_constant}:")
            keyword = "elif"
            body = indent + "        "
            for name, attribute in below.leaves:
                path, convert = fields[name]
                read = f"{child}.text" if attribute is None else f"{child}.get({attribute!r})"
                failure = f"FieldFailure({name!r}, {path.text!r}, str(error))"
                lines.extend(
                    [
                        f"{body}if {name!r} not in values:",
                        f"{body}    raw = {read}",
                        f"{body}    if raw is not None:",
                        f"{body}        try:",
                        f"{body}            values[{name!r}] = {constant(convert, 'convert')}(raw)",
                        f"{body}        except ConversionError as error:",
                        f"{body}            failures.append({failure})",
                    ]
                )
            if below.children:
                emit(below, child, depth + 1, body)
            elif not below.leaves:
                lines.append(f"{body}pass")

    if root.children:
        emit(root, "element", 0, "    ")
    lines.append("    return values, failures")
    source = "\n".join(lines) + "\n"
    namespace: dict[str, object] = dict(constants)
    # The source is generated here from a checked codec: tags and field names only.
    exec(compile(source, "<codec extractor>", "exec"), namespace)
    return source, namespace["extract"]  # type: ignore[return-value]
