"""The second pass over a schema-invalid input: every schema error with line and XPath.

libxml2 validates while it streams but reports its errors only at the end and without
positions. So when the streaming pass finds the input schema-invalid, this pass reads it again
without the schema, validates each transaction on its own against an item schema (the item's
type as a global element) and releases it, and finally validates what is left (headers and the
first transaction) against the full schema. Memory stays bounded however large the package.
"""

from __future__ import annotations

from lxml import etree

from gateway.configuration.settings import ParserSettings
from gateway.iso.codec_catalogue import Codec, CodecCatalogue
from gateway.iso.input_source import InputSource
from gateway.iso.problems import Problem
from gateway.iso.safe_input import GuardedStream, UnsafeInputError
from gateway.iso.safe_parsing import SAFE_PARSE_OPTIONS, syntax_text
from gateway.iso.schema_catalogue import SchemaCatalogue
from gateway.iso.xml_paths import named_path, strip_namespaces

_MEMBER_ID = "MmbId'"


def schema_problem(message: str, line: int, path: str) -> Problem:
    """A schema error as a problem; a malformed bank code gets RC01, the rest FF01."""
    text = strip_namespaces(message)
    code = "RC01" if _MEMBER_ID in text and "pattern" in text else "FF01"
    return Problem(code, text, line, path)


class SchemaDiagnostics:
    def __init__(
        self, schemas: SchemaCatalogue, codecs: CodecCatalogue, limits: ParserSettings
    ) -> None:
        self._schemas = schemas
        self._codecs = codecs
        self._limits = limits
        self._item_tags = {codec.item_tag: codec for codec in codecs if codec.item_tag}
        self._always_index = frozenset(self._item_tags)

    def locate(self, source: InputSource, limit: int) -> tuple[list[Problem], bool]:
        """Problems in line order (at most ``limit``) and whether more were found."""
        problems: list[Problem] = []
        with source.open() as stream:
            guarded = GuardedStream(stream, self._limits)
            context = etree.iterparse(
                guarded, events=("end",), tag=list(self._item_tags), **SAFE_PARSE_OPTIONS
            )
            counts: dict[str, int] = {}
            released: etree._Element | None = None
            try:
                for _, element in context:
                    codec = self._item_tags[element.tag]
                    index = counts.get(element.tag, 0) + 1
                    counts[element.tag] = index
                    if index > 1:
                        problems.extend(self._check_item(codec, element, index))
                        if released is not None:
                            released.getparent().remove(released)
                        element.clear()
                        released = element
                        guarded.release()
                    if len(problems) > limit:
                        break
            except UnsafeInputError as rejected:
                return [rejected.problem], False
            except etree.XMLSyntaxError as error:
                first = next(iter(context.error_log), None)
                message = first.message if first is not None else str(error)
                line = first.line if first is not None else error.lineno
                return [Problem("FF01", strip_namespaces(syntax_text(message)), line or 0)], False
            if released is not None:
                released.getparent().remove(released)
            root = context.root
        if root is not None and len(problems) <= limit:
            problems.extend(self._check_rest(root))
        problems.sort(key=lambda problem: problem.line)
        return problems[:limit], len(problems) > limit

    def _check_item(self, codec: Codec, element: etree._Element, index: int) -> list[Problem]:
        assert codec.item_tag is not None and codec.item_type is not None
        schema = self._schemas.item_schema(
            codec.namespace, etree.QName(codec.item_tag).localname, codec.item_type
        )
        if schema.validate(element):
            return []
        parent = element.getparent()
        above = named_path(parent, always_index=self._always_index) if parent is not None else ""
        base = f"{above}/{etree.QName(element).localname}[{index}]"
        problems = []
        for entry in schema.error_log:
            target = _resolve(element, entry.path)
            if target is element or target is None:
                path = base
            else:
                path = base + named_path(target, stop=element, always_index=self._always_index)
            problems.append(schema_problem(entry.message, entry.line, path))
        return problems

    def _check_rest(self, root: etree._Element) -> list[Problem]:
        if not isinstance(root.tag, str):
            return []
        schema = self._schemas.catalogue
        if schema.validate(root.getroottree()):
            return []
        return tree_schema_problems(root, schema.error_log, self._always_index)


def tree_schema_problems(
    root: etree._Element, errors: etree._ListErrorLog, always_index: frozenset[str]
) -> list[Problem]:
    """Schema errors of a whole tree as problems, with lines and readable paths."""
    tree = root.getroottree()
    problems = []
    for entry in errors:
        found = tree.xpath(entry.path) if entry.path else []
        target = found[0] if isinstance(found, list) and found else None
        path = (
            named_path(target, always_index=always_index)
            if isinstance(target, etree._Element)
            else "/"
        )
        problems.append(schema_problem(entry.message, entry.line, path))
    return problems


def _resolve(item: etree._Element, path: str | None) -> etree._Element | None:
    """Turn a path reported for a subtree (``/*/*[2]``) into the element under ``item``."""
    if not path or not path.startswith("/*"):
        return None
    found = item.xpath("." + path[2:]) if len(path) > 2 else [item]
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return found[0]
    return None
