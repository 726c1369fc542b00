"""The validation pipeline every entry point shares (CLI, file drop, HTTPS).

One streaming pass does it all: the guarded stream enforces the parser bounds, lxml parses
and validates against the catalogue schema as it reads, the codec extracts each item in one
walk, and the business rules see the header and every item before the item is released.
When the schema says no, a second pass locates every schema error (``diagnostics``); rule
findings are then dropped, since rules assume a schema-valid document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree
from pydantic import BaseModel, ValidationError

from gateway.commands.inbound import BusinessHeader
from gateway.configuration.participants import ParticipantDirectory
from gateway.configuration.settings import Settings
from gateway.iso.business_header import check_business_header
from gateway.iso.codec_catalogue import HEADER_NAMESPACE, Codec, CodecCatalogue
from gateway.iso.diagnostics import SchemaDiagnostics
from gateway.iso.extractor import Extractor, FieldFailure
from gateway.iso.input_source import InputSource
from gateway.iso.paths import local_name
from gateway.iso.problems import Problem, Verdict
from gateway.iso.rules.base import ItemRef, Location, Rule, RuleContext
from gateway.iso.safe_input import GuardedStream, InputRejected
from gateway.iso.safe_parsing import SAFE_PARSE_OPTIONS
from gateway.iso.schema_catalogue import SchemaCatalogue
from gateway.iso.xml_paths import strip_namespaces

ENVELOPE_NAMESPACE = "urn:isogw:xsd:envelope.001.01"
MESSAGE_TAG = f"{{{ENVELOPE_NAMESPACE}}}Message"


class MessageValidator:
    """Validates inputs; built once (schemas and codecs compiled), used for many inputs."""

    def __init__(
        self,
        schemas: SchemaCatalogue,
        codecs: CodecCatalogue,
        directory: ParticipantDirectory,
        settings: Settings,
        rules: Mapping[str, type[Rule]],
    ) -> None:
        header_codec = codecs.for_namespace(HEADER_NAMESPACE)
        if header_codec is None or header_codec.header_extractor is None:
            raise ValueError("the codec of head.001.001.02 with a [decode] section is required")
        self.schemas = schemas
        self.codecs = codecs
        self.directory = directory
        self.settings = settings
        self.rules = rules
        self.header_codec = header_codec
        self.message_codecs = {codec.message_tag: codec for codec in codecs}
        tags = {MESSAGE_TAG, *self.message_codecs}
        tags.update(codec.item_tag for codec in codecs if codec.item_tag)
        self.tags = sorted(tags)
        self.diagnostics = SchemaDiagnostics(schemas, codecs, settings.parser)

    def validate(self, source: InputSource) -> Verdict:
        verdict = Verdict(source.name)
        run = _StreamingRun(self, verdict)
        with source.open() as stream:
            schema_invalid = run.execute(stream)
        if schema_invalid:
            verdict.problems, verdict.truncated = self.diagnostics.locate(
                source, self.settings.validation.max_reported_problems
            )
            if not verdict.problems:
                verdict.problems = [
                    Problem("FF01", strip_namespaces(message)) for message in schema_invalid
                ]
        if run.codec is None and not verdict.problems:
            verdict.problems.append(_unsupported(run.document_root))
        return verdict


class _StreamingRun:
    """The state of one streaming pass over one input."""

    def __init__(self, validator: MessageValidator, verdict: Verdict) -> None:
        self.validator = validator
        self.verdict = verdict
        self.limit = validator.settings.validation.max_reported_problems
        self.prefix = ""
        self.codec: Codec | None = None
        self.business_header: BusinessHeader | None = None
        self.business_header_element: etree._Element | None = None
        self.root: etree._Element | None = None
        self.header: BaseModel | None = None
        self.header_done = False
        self.rules: list[Rule] = []
        self.item_rules: list[Rule] = []
        self.count = 0
        self.comments: list[etree._Element] = []
        self.document_root: etree._Element | None = None

    # The streaming loop -------------------------------------------------------------------

    def execute(self, stream: Any) -> list[str]:
        """Run the pass; return the schema error messages (empty when schema-valid)."""
        validator = self.validator
        guarded = GuardedStream(stream, validator.settings.parser)
        self.guarded = guarded
        context = etree.iterparse(
            guarded,
            events=("start", "end", "comment", "pi"),
            tag=validator.tags,
            schema=validator.schemas.catalogue,
            **SAFE_PARSE_OPTIONS,
        )
        try:
            for event, element in context:
                if event == "end":
                    self._on_end(element)
                elif event == "start":
                    self._on_start(element)
                elif event == "comment":
                    self.comments.append(element)
                else:
                    raise InputRejected(
                        Problem(
                            "FF01",
                            "processing instructions are not allowed",
                            element.sourceline or 0,
                        )
                    )
        except InputRejected as rejected:
            self._replace_with(rejected.problem)
            return []
        except etree.XMLSyntaxError as error:
            syntax = [entry for entry in error.error_log if entry.domain_name != "SCHEMASV"]
            if syntax:
                first = syntax[0]
                self._replace_with(
                    Problem("FF01", f"not well-formed XML: {first.message}", first.line or 0)
                )
                return []
            return [entry.message for entry in error.error_log] or [str(error)]
        self.document_root = context.root
        return []

    def _replace_with(self, problem: Problem) -> None:
        self.verdict.problems = [problem]
        self.verdict.truncated = False

    def _on_start(self, element: etree._Element) -> None:
        tag = element.tag
        parent = element.getparent()
        if tag == MESSAGE_TAG:
            if parent is None:
                self.prefix = "/Message"
            return
        codec = self.validator.message_codecs.get(tag)  # type: ignore[arg-type]
        if codec is not None:
            if parent is None or (parent.tag == MESSAGE_TAG and parent.getparent() is None):
                if codec is self.validator.header_codec and parent is not None:
                    return  # the envelope's header, decoded at its end
                if self.codec is None:
                    self.codec = codec
                    self.verdict.message_type = codec.message
            return
        if self.codec is not None and tag == self.codec.item_tag and not self.header_done:
            root = self._root_of_item(element)
            if root is not None:
                self._decode_header(root)

    def _on_end(self, element: etree._Element) -> None:
        codec = self.codec
        tag = element.tag
        if codec is not None and tag == codec.item_tag:
            if self.header_done and self.root is not None:
                self._on_item(codec, element)
            return
        if tag == self.validator.header_codec.message_tag and codec is not self.validator.header_codec:
            self._decode_business_header(element)
            return
        if codec is not None and tag == codec.message_tag:
            self._on_document_end(codec, element)

    # Header, items, end -------------------------------------------------------------------

    def _root_of_item(self, item: etree._Element) -> etree._Element | None:
        assert self.codec is not None
        current = item.getparent()
        for step in reversed(self.codec.item_steps[:-1]):
            if current is None or current.tag != step:
                return None
            current = current.getparent()
        if current is None or current.tag != self.codec.root_tag:
            return None
        return current

    def _decode_header(self, root: etree._Element) -> None:
        codec = self.codec
        assert codec is not None
        self.header_done = True
        self.root = root
        if codec.header_extractor is None or codec.header_model is None:
            return  # an outbound-only message: schema and header checks only
        header = self._decode(codec.header_extractor, codec.header_model, root, None)
        if header is None:
            return
        self.header = header
        self.verdict.message_id = getattr(header, "message_id", None) or getattr(
            header, "business_message_id", None
        )
        report = self.report
        context = RuleContext(
            self.validator.directory,
            self.validator.settings.validation,
            codec.message,
            report,
        )
        self.rules = [self.validator.rules[name](context) for name in codec.definition.rules]
        self.item_rules = [rule for rule in self.rules if type(rule).on_item is not Rule.on_item]
        for rule in self.rules:
            rule.on_header(header)

    def _on_item(self, codec: Codec, element: etree._Element) -> None:
        self.count += 1
        assert codec.item_extractor is not None and codec.item_model is not None
        at = ItemRef(self.count, element)
        if self.header is not None:
            item = self._decode(codec.item_extractor, codec.item_model, element, at)
            if item is not None:
                for rule in self.item_rules:
                    rule.on_item(item, at)
        if self.comments:
            self._check_comments()
        previous = element.getprevious()
        if previous is not None and previous.tag == element.tag:
            element.getparent().remove(previous)  # type: ignore[union-attr]
        element.clear()
        self.guarded.release()

    def _on_document_end(self, codec: Codec, element: etree._Element) -> None:
        root = element if codec is self.validator.header_codec else element.find(codec.root_tag)
        if not self.header_done and root is not None:
            self._decode_header(root)
        if self.comments:
            self._check_comments()
        self.verdict.transactions = self.count
        if self.header is not None:
            for rule in self.rules:
                rule.on_end(self.count)
        if self.business_header is not None:
            check_business_header(
                self.business_header,
                codec.message,
                self.header,
                self.validator.directory,
                self._report_business_header,
            )

    def _decode_business_header(self, element: etree._Element) -> None:
        codec = self.validator.header_codec
        assert codec.header_extractor is not None and codec.header_model is not None
        self.business_header_element = element
        header = self._decode(codec.header_extractor, codec.header_model, element, None, element)
        if isinstance(header, BusinessHeader):
            self.business_header = header

    def _decode(
        self,
        extractor: Extractor,
        model: type[BaseModel],
        element: etree._Element,
        at: ItemRef | None,
        base: etree._Element | None = None,
    ) -> BaseModel | None:
        values, failures = extractor.extract(element)
        for failure in failures:
            self._report_failure(failure, at, base)
        if failures:
            return None
        try:
            return model(**values)
        except ValidationError as error:
            missing = ", ".join(str(item["loc"][0]) for item in error.errors() if item["loc"])
            self.report("FF01", f"cannot decode {model.__name__}: {missing}", Location(at))
            return None

    def _report_failure(
        self, failure: FieldFailure, at: ItemRef | None, base: etree._Element | None
    ) -> None:
        if base is not None:
            line, path = self._locate_in(base, self._element_path(base), failure.field, header=True)
            self._add(Problem("FF01", f"{failure.path}: {failure.reason}", line, path))
        else:
            self.report("FF01", f"{failure.path}: {failure.reason}", Location(at, failure.field))

    def _check_comments(self) -> None:
        for comment in self.comments:
            parent = comment.getparent()
            inside_text = parent is not None and bool(parent.text and parent.text.strip())
            if inside_text or bool(comment.tail and comment.tail.strip()):
                raise InputRejected(
                    Problem(
                        "FF01",
                        "comment inside a value: comments may not split element text",
                        comment.sourceline or 0,
                        self._element_path(parent) if parent is not None else "/",
                    )
                )
        self.comments.clear()

    # Reporting ----------------------------------------------------------------------------

    def report(self, code: str, text: str, location: Location) -> None:
        if len(self.verdict.problems) >= self.limit:
            self.verdict.truncated = True
            return
        line, path = self._locate(location)
        self.verdict.problems.append(Problem(code, text, line, path))

    def _add(self, problem: Problem) -> None:
        if len(self.verdict.problems) >= self.limit:
            self.verdict.truncated = True
            return
        self.verdict.problems.append(problem)

    def _report_business_header(self, code: str, text: str, field: str) -> None:
        element = self.business_header_element
        assert element is not None
        line, path = self._locate_in(element, self._element_path(element), field, header=True)
        self._add(Problem(code, text, line, path))

    def _root_path(self) -> str:
        codec = self.codec
        assert codec is not None
        if codec is self.validator.header_codec:
            return f"{self.prefix}/AppHdr"
        return f"{self.prefix}/Document/{local_name(codec.root_tag)}"

    def _element_path(self, element: etree._Element) -> str:
        steps = []
        current: etree._Element | None = element
        while current is not None:
            steps.append(local_name(current.tag))  # type: ignore[arg-type]
            current = current.getparent()
        return "/" + "/".join(reversed(steps))

    def _locate(self, location: Location) -> tuple[int, str]:
        codec = self.codec
        assert codec is not None
        item = location.item
        if item is None:
            assert self.root is not None
            return self._locate_in(self.root, self._root_path(), location.field, header=True)
        base = f"{self._root_path()}/{codec.item_path}[{item.index}]"
        if item.element is None:
            suffix = ""
            if location.field is not None and codec.item_extractor is not None:
                suffix = "/" + _local_path(codec.item_extractor.path_of(location.field).steps)
            return item.line, base + suffix
        return self._locate_in(item.element, base, location.field, header=False)

    def _locate_in(
        self, element: etree._Element, base: str, field: str | None, header: bool
    ) -> tuple[int, str]:
        line = element.sourceline or 0
        if field is None:
            return line, base
        codec = self.codec if element is not self.business_header_element else None
        extractor = (
            self.validator.header_codec.header_extractor
            if codec is None
            else (codec.header_extractor if header else codec.item_extractor)
        )
        assert extractor is not None
        compiled = extractor.path_of(field)
        current = element
        for step in compiled.steps:
            child = current.find(step)
            if child is None:
                break
            current = child
        suffix = _local_path(compiled.steps)
        if compiled.attribute:
            suffix += f"/@{compiled.attribute}"
        return current.sourceline or line, f"{base}/{suffix}"


def _unsupported(root: etree._Element | None) -> Problem:
    """The input is schema-valid but holds no message the gateway has a codec for."""
    if root is None:
        return Problem("FF01", "no ISO 20022 message found", 1)
    document = root[-1] if root.tag == MESSAGE_TAG and len(root) else root
    tag = document.tag if isinstance(document.tag, str) else ""
    namespace = etree.QName(tag).namespace if tag else None
    return Problem(
        "FF01",
        f"message {namespace or tag} is not supported by this gateway (no codec)",
        document.sourceline or 1,
        "/" + "/".join(local_name(el.tag) for el in (root, document) if el is not None)
        if document is not root
        else "/" + local_name(tag),
    )


def _local_path(steps: tuple[str, ...]) -> str:
    return "/".join(local_name(step) for step in steps)
