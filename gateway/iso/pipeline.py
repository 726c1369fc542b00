"""The validation pipeline every entry point shares (CLI, file drop, HTTPS).

Two ways in, one way through:
* small inputs (up to ``parser.tree_max_bytes``) are parsed whole, validated against the
  catalogue schema (errors come with lines and paths at once), then walked;
* larger inputs are streamed: lxml parses and validates as it reads, each transaction is
  handled at its end tag and released, so memory stays flat however large the package. When
  the schema says no, a second pass locates every schema error (``diagnostics``).
Either way the same handler sees the end of each item, business header and document: the
codec extracts each item in one walk and the business rules check it. Rule findings are
dropped when the schema fails, since rules assume a schema-valid document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, BinaryIO

from lxml import etree

from gateway.configuration.participants import ParticipantDirectory
from gateway.configuration.settings import Settings
from gateway.iso.business_header import check_business_header
from gateway.iso.codec_catalogue import Codec, CodecCatalogue
from gateway.iso.diagnostics import SchemaDiagnostics, tree_schema_problems
from gateway.iso.extractor import Extractor, FieldFailure
from gateway.iso.input_source import InputSource
from gateway.iso.namespaces import HEADER_NAMESPACE, MESSAGE_TAG
from gateway.iso.paths import local_name
from gateway.iso.problems import Problem, Verdict
from gateway.iso.rules.base import ItemRef, Location, Rule, RuleContext
from gateway.iso.safe_input import GuardedStream, UnsafeInputError
from gateway.iso.safe_parsing import SAFE_PARSE_OPTIONS, syntax_text
from gateway.iso.schema_catalogue import SchemaCatalogue
from gateway.iso.well_formedness import first_syntax_error
from gateway.iso.xml_paths import strip_namespaces

_EVENTS = ("end", "comment", "pi")


class MessageValidator:
    """Validates inputs; built once (schemas and codecs compiled), used for many inputs.

    ``validate`` is safe to call from several threads at once: each call has its own parser.
    """

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
        self.item_codecs = {codec.item_tag: codec for codec in codecs if codec.item_tag}
        self.always_index = frozenset(self.item_codecs)
        # The envelope's end too: the streaming pass notes that its input ended whole.
        self.tags = sorted({MESSAGE_TAG, *self.message_codecs, *self.item_codecs})
        self.diagnostics = SchemaDiagnostics(schemas, codecs, settings.parser)

    def validate(self, source: InputSource, parsed: etree._Element | None = None) -> Verdict:
        """``parsed``: the same bytes already parsed with the safe options (the gateway parses
        a submission once, to check its signature); a small input is then not parsed again.
        The prolog checks still read the bytes."""
        verdict = Verdict(source.name)
        run = _Run(self, verdict)
        small = source.size is not None and source.size <= self.settings.parser.tree_max_bytes
        with source.open() as stream:
            schema_errors = run.whole(stream, parsed) if small else run.streamed(stream)
        if not small and not run.ended_whole:
            # The schema-validating stream parser reports no syntax error: it stops
            # (gateway/iso/well_formedness.py). A second pass finds it, if there is one.
            syntax = first_syntax_error(source, self.settings.parser)
            if syntax is not None:
                verdict.problems, verdict.truncated, schema_errors = [syntax], False, []
        if schema_errors:
            verdict.problems, verdict.truncated = self.diagnostics.locate(
                source, self.settings.validation.max_reported_problems
            )
            if not verdict.problems:
                verdict.problems = [
                    Problem("FF01", strip_namespaces(message)) for message in schema_errors
                ]
        if run.codec is None and not verdict.problems:
            verdict.problems.append(_unsupported(run.document_root))
        return verdict


class _Run:
    """The state of one validation of one input."""

    def __init__(self, validator: MessageValidator, verdict: Verdict) -> None:
        self.validator = validator
        self.verdict = verdict
        self.limit = validator.settings.validation.max_reported_problems
        self.release = True
        self.guarded: GuardedStream | None = None
        self.prefix = ""
        self.codec: Codec | None = None
        self.business_header: Any = None
        self.business_header_element: etree._Element | None = None
        self.root: etree._Element | None = None
        self.item_parent: etree._Element | None = None
        self.header: Any = None
        self.header_done = False
        self.rules: list[Rule] = []
        self.item_rules: list[Rule] = []
        self.count = 0
        self.comments: list[etree._Element] = []
        self.document_root: etree._Element | None = None
        self.ended_whole = False
        """The streaming pass saw its root element end, with no error or bound met."""

    # The two ways in ----------------------------------------------------------------------

    def streamed(self, stream: BinaryIO) -> list[str]:
        """Stream, validate and handle; return schema error messages (empty when valid)."""
        validator = self.validator
        self.guarded = GuardedStream(stream, validator.settings.parser)
        context = etree.iterparse(
            self.guarded,
            events=_EVENTS,
            tag=validator.tags,
            schema=validator.schemas.catalogue,
            **SAFE_PARSE_OPTIONS,
        )
        try:
            self._handle(context)
        except UnsafeInputError as rejected:
            self.ended_whole = False  # a bound met may be a syntax error's consequence
            self._replace_with(rejected.problem)
            return []
        except etree.XMLSyntaxError as error:
            # A syntax error is named by the second pass (``validate``), which words it better
            # (this parser may say "no element found", line 0); schema errors are located by
            # the diagnostics. The context's own log: the exception's holds other parses' too.
            self.ended_whole = False
            return [entry.message for entry in context.error_log] or [str(error)]
        self.document_root = context.root
        return []

    def whole(self, stream: BinaryIO, parsed: etree._Element | None = None) -> list[str]:
        """Parse the whole input (unless ``parsed`` is given), validate the tree, then handle
        it; the tree is only read. Never needs pass two."""
        validator = self.validator
        self.release = False
        guarded = GuardedStream(stream, validator.settings.parser, count_elements=False)
        parser = etree.XMLParser(**SAFE_PARSE_OPTIONS)
        try:
            data = guarded.read_all()
            root = parsed if parsed is not None else etree.fromstring(data, parser)
        except UnsafeInputError as rejected:
            self._replace_with(rejected.problem)
            return []
        except etree.XMLSyntaxError as error:
            first = next(iter(parser.error_log), None)
            message = first.message if first is not None else error.msg
            line = first.line if first is not None else error.lineno
            self._replace_with(
                Problem("FF01", f"not well-formed XML: {syntax_text(message)}", line or 0)
            )
            return []
        self.document_root = root
        schema = validator.schemas.catalogue
        if not schema.validate(root):
            problems = tree_schema_problems(root, schema.error_log, validator.always_index)
            self.verdict.problems = problems[: self.limit]
            self.verdict.truncated = len(problems) > self.limit
            self._identify(root)
            return []
        try:
            self._handle(self._tree_events(root))
        except UnsafeInputError as rejected:
            self._replace_with(rejected.problem)
        return []

    def _tree_events(self, root: etree._Element) -> Iterator[tuple[str, Any]]:
        """The events the streaming parser would give, read from a whole tree.

        ``iter`` visits in document order and filters in C; the document itself is handed
        over last, as its end tag would be. Comments and processing instructions come too.
        """
        validator = self.validator
        document = root[-1] if root.tag == MESSAGE_TAG and len(root) else root
        codec = validator.message_codecs.get(document.tag)
        tags = {validator.header_codec.message_tag}
        if codec is not None:
            tags.add(codec.message_tag)
            if codec.item_tag:
                tags.add(codec.item_tag)
        for node in root.iter(*tags, etree.Comment, etree.ProcessingInstruction):
            if node is document:
                continue
            if isinstance(node, etree._Comment):
                yield "comment", node
            elif isinstance(node, etree._ProcessingInstruction):
                yield "pi", node
            else:
                yield "end", node
        yield "end", document

    def _identify(self, root: etree._Element) -> None:
        document = root[-1] if root.tag == MESSAGE_TAG and len(root) else root
        codec = self.validator.message_codecs.get(document.tag)
        if codec is not None:
            self.codec = codec
            self.verdict.message_type = codec.message

    # The handler --------------------------------------------------------------------------

    def _handle(self, events: Iterable[tuple[str, Any]]) -> None:
        validator = self.validator
        item_codecs = validator.item_codecs
        for event, element in events:
            if event == "end":
                tag = element.tag
                if tag in item_codecs:
                    self._on_item(element)
                elif tag == validator.header_codec.message_tag and element.getparent() is not None:
                    self._decode_business_header(element)
                else:
                    self.ended_whole = element.getparent() is None
                    self._on_document_end(element)
            elif event == "comment":
                self.comments.append(element)
            else:
                raise UnsafeInputError(
                    Problem(
                        "FF01", "processing instructions are not allowed", element.sourceline or 0
                    )
                )

    def _replace_with(self, problem: Problem) -> None:
        self.verdict.problems = [problem]
        self.verdict.truncated = False

    def _adopt(self, codec: Codec, document: etree._Element) -> bool:
        """Take ``codec`` for this input if ``document`` is the message (root or enveloped)."""
        parent = document.getparent()
        if parent is not None and (parent.tag != MESSAGE_TAG or parent.getparent() is not None):
            return False
        if self.codec is None:
            self.codec = codec
            self.verdict.message_type = codec.message
            self.prefix = "/Message" if parent is not None else ""
        return self.codec is codec

    def _on_item(self, element: etree._Element) -> None:
        parent = element.getparent()
        if parent is not self.item_parent and not self._first_item(element):
            return
        codec = self.codec
        assert codec is not None and codec.rule_extractor is not None
        assert codec.rule_view is not None
        self.count += 1
        at = ItemRef(self.count, element)
        if self.item_rules:
            item = self._read_view(
                codec.rule_extractor, codec.rule_view, codec.rule_required, element, at
            )
            if item is not None:
                for rule in self.item_rules:
                    rule.on_item(item, at)
        if self.comments:
            self._check_comments()
        if self.release:
            previous = element.getprevious()
            if previous is not None and previous.tag == element.tag:
                parent.remove(previous)
            element.clear()
            assert self.guarded is not None
            self.guarded.release()

    def _first_item(self, element: etree._Element) -> bool:
        """Check the first item sits where its codec says; then decode the header."""
        if self.item_parent is not None:
            return False
        codec = self.validator.item_codecs[element.tag]
        current = element.getparent()
        for step in reversed(codec.item_steps[:-1]):
            if current is None or current.tag != step:
                return False
            current = current.getparent()
        if current is None or current.tag != codec.root_tag:
            return False
        document = current.getparent()
        if (
            document is None
            or document.tag != codec.message_tag
            or not self._adopt(codec, document)
        ):
            return False
        self.item_parent = element.getparent()
        self._decode_header(current)
        return True

    def _on_document_end(self, element: etree._Element) -> None:
        codec = self.validator.message_codecs.get(element.tag)
        if codec is None or not self._adopt(codec, element):
            return
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

    def _decode_header(self, root: etree._Element) -> None:
        codec = self.codec
        assert codec is not None
        self.header_done = True
        self.root = root
        if codec.header_rule_extractor is None or codec.header_view is None:
            return  # an outbound-only message: schema and header checks only
        header = self._read_view(
            codec.header_rule_extractor, codec.header_view, codec.header_required, root, None
        )
        if header is None:
            return
        self.header = header
        self.verdict.message_id = getattr(header, "message_id", None) or getattr(
            header, "business_message_id", None
        )
        context = RuleContext(
            self.validator.directory,
            self.validator.settings.validation,
            codec.message,
            self.report,
        )
        self.rules = [self.validator.rules[name](context) for name in codec.definition.rules]
        self.item_rules = [rule for rule in self.rules if type(rule).on_item is not Rule.on_item]
        for rule in self.rules:
            rule.on_header(header)

    def _decode_business_header(self, element: etree._Element) -> None:
        parent = element.getparent()
        if parent is None or parent.tag != MESSAGE_TAG:
            return
        codec = self.validator.header_codec
        assert codec.header_rule_extractor is not None and codec.header_view is not None
        self.business_header_element = element
        self.business_header = self._read_view(
            codec.header_rule_extractor,
            codec.header_view,
            codec.header_required,
            element,
            None,
            element,
        )

    def _read_view(
        self,
        extractor: Extractor,
        view: Callable[..., Any],
        required: frozenset[str],
        element: etree._Element,
        at: ItemRef | None,
        base: etree._Element | None = None,
    ) -> Any:
        """Read the fields the checks need; None when a field is unreadable or missing."""
        values, failures = extractor.extract(element)
        for failure in failures:
            self._report_failure(failure, at, base)
        if failures:
            return None
        if not required.issubset(values):
            missing = sorted(required.difference(values))
            self._report_field(
                f"required fields missing: {', '.join(missing)}", at, base, missing[0]
            )
            return None
        return view(**values)

    def _report_failure(
        self, failure: FieldFailure, at: ItemRef | None, base: etree._Element | None
    ) -> None:
        self._report_field(f"{failure.path}: {failure.reason}", at, base, failure.field)

    def _report_field(
        self, text: str, at: ItemRef | None, base: etree._Element | None, field: str
    ) -> None:
        """FF01 about a field of the document (``at``: its item, if any), or of ``base``: the
        business header, read before the Document (and its codec) when the input is streamed."""
        if base is not None:
            line, path = self._locate_in(base, _element_path(base), field, header=True)
            self._add(Problem("FF01", text, line, path))
        else:
            self.report("FF01", text, Location(at, field))

    def _check_comments(self) -> None:
        for comment in self.comments:
            parent = comment.getparent()
            inside_text = parent is not None and bool(parent.text and parent.text.strip())
            if inside_text or bool(comment.tail and comment.tail.strip()):
                raise UnsafeInputError(
                    Problem(
                        "FF01",
                        "comment inside a value: comments may not split element text",
                        comment.sourceline or 0,
                        _element_path(parent) if parent is not None else "/",
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
        line, path = self._locate_in(element, _element_path(element), field, header=True)
        self._add(Problem(code, text, line, path))

    def _root_path(self) -> str:
        codec = self.codec
        assert codec is not None
        if codec is self.validator.header_codec:
            return f"{self.prefix}/AppHdr"
        return f"{self.prefix}/Document/{local_name(codec.root_tag)}"

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
        if element is self.business_header_element or self.codec is None:
            extractor = self.validator.header_codec.header_extractor
        else:
            extractor = self.codec.header_extractor if header else self.codec.item_extractor
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


def _element_path(element: etree._Element) -> str:
    steps = []
    current: etree._Element | None = element
    while current is not None:
        steps.append(local_name(current.tag))
        current = current.getparent()
    return "/" + "/".join(reversed(steps))


def _unsupported(root: etree._Element | None) -> Problem:
    """The input is schema-valid but holds no message the gateway has a codec for."""
    if root is None or not isinstance(root.tag, str):
        return Problem("FF01", "no ISO 20022 message found", 1)
    document = root[-1] if root.tag == MESSAGE_TAG and len(root) else root
    namespace = etree.QName(document).namespace or local_name(document.tag)
    path = "/" + local_name(root.tag)
    if document is not root:
        path += "/" + local_name(document.tag)
    return Problem(
        "FF01",
        f"message {namespace} is not supported by this gateway (no codec)",
        document.sourceline or 1,
        path,
    )


def _local_path(steps: tuple[str, ...]) -> str:
    return "/".join(local_name(step) for step in steps)
