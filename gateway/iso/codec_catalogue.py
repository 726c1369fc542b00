"""Loads every ``codecs/*.toml``, checks it against its XSD and command, and compiles it.

Start-up fails fast with a message naming the codec file and what is wrong: the file name is
not the message id, the XSD is missing, a path does not exist in the XSD, a command or field
is unknown, a required command field is not mapped, or a rule is unknown or lacks a field.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xmlschema
from pydantic import BaseModel, ValidationError
from xmlschema.validators import XsdAnyElement, XsdElement

from gateway.configuration.toml_files import TomlFileError, describe, read_toml
from gateway.iso.codec_definition import CodecDefinition, EncodeElement, FieldMap
from gateway.iso.converters import DECODERS
from gateway.iso.extractor import Extractor
from gateway.iso.namespaces import HEADER_NAMESPACE
from gateway.iso.paths import CompiledPath, PathError, compile_path
from gateway.iso.schema_catalogue import SchemaCatalogue

PIPELINE_HEADER_FIELDS = frozenset(
    {
        "message_id",
        "instructing_agent",
        "sender",
        "receiver",
        "business_message_id",
        "message_definition",
    }
)
"""Header fields the validation pipeline reads itself (verdict, business-header checks)."""


class CodecError(Exception):
    """A codec file is wrong; the message names the file and the problem."""


@dataclass(frozen=True)
class RuleRequirement:
    """What a business rule needs from the decoded header and items."""

    header_fields: frozenset[str]
    item_fields: frozenset[str]


@dataclass(frozen=True)
class Codec:
    definition: CodecDefinition
    source: Path
    namespace: str
    message_tag: str
    """Clark name of the message's root element (``Document``, or ``AppHdr`` for head.001)."""

    root_tag: str
    header_model: type[BaseModel] | None
    header_extractor: Extractor | None
    item_steps: tuple[str, ...]
    item_model: type[BaseModel] | None
    item_extractor: Extractor | None
    item_type: str | None
    rule_extractor: Extractor | None
    """Reads only the item fields the codec's rules use (the validation pass)."""

    rule_view: Callable[..., Any] | None
    """A light record of those fields (absent ones are None) handed to the rules."""

    rule_required: frozenset[str]
    """Of those fields, the ones the item command requires."""

    header_rule_extractor: Extractor | None
    header_view: Callable[..., Any] | None
    header_required: frozenset[str]

    @property
    def message(self) -> str:
        return self.definition.message

    @property
    def item_tag(self) -> str | None:
        return self.item_steps[-1] if self.item_steps else None

    @property
    def item_path(self) -> str:
        return "/".join(step.rpartition("}")[2] for step in self.item_steps)


class CodecCatalogue:
    def __init__(self, codecs: Iterable[Codec]) -> None:
        self._by_namespace = {codec.namespace: codec for codec in codecs}

    def __iter__(self) -> Iterator[Codec]:
        return iter(self._by_namespace.values())

    def __len__(self) -> int:
        return len(self._by_namespace)

    def for_namespace(self, namespace: str) -> Codec | None:
        return self._by_namespace.get(namespace)

    def for_message(self, message: str) -> Codec | None:
        return self._by_namespace.get(f"urn:iso:std:iso:20022:tech:xsd:{message}")


def load_codecs(
    folder: Path,
    schemas: SchemaCatalogue,
    models: Mapping[str, type[BaseModel]],
    rules: Mapping[str, RuleRequirement],
) -> CodecCatalogue:
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise CodecError(f"{folder}: no codec files")
    loader = _CodecLoader(schemas, models, rules)
    return CodecCatalogue(loader.load(path) for path in files)


class _CodecLoader:
    def __init__(
        self,
        schemas: SchemaCatalogue,
        models: Mapping[str, type[BaseModel]],
        rules: Mapping[str, RuleRequirement],
    ) -> None:
        self._schemas = schemas
        self._models = models
        self._rules = rules

    def load(self, path: Path) -> Codec:
        try:
            raw = read_toml(path)
            definition = CodecDefinition.model_validate(raw)
        except TomlFileError as error:
            raise CodecError(str(error)) from error
        except ValidationError as error:
            raise CodecError(f"{path}: {describe(error)}") from error
        try:
            return self._compile(definition, path)
        except (PathError, ValueError) as error:
            raise CodecError(f"{path}: {error}") from error

    def _compile(self, definition: CodecDefinition, path: Path) -> Codec:
        if path.stem != definition.message:
            raise ValueError(f"file name must be the message id {definition.message}.toml")
        namespace = definition.namespace
        schema_file = self._schemas.file_for(namespace)
        if schema_file is None or schema_file.name != definition.schema_file:
            raise ValueError(
                f"schema {definition.schema_file!r} is not in {self._schemas.folder} "
                f"with target namespace {namespace}"
            )
        is_header = namespace == HEADER_NAMESPACE
        message_tag = f"{{{namespace}}}{'AppHdr' if is_header else 'Document'}"
        model = self._schemas.model
        message_decl = model.maps.elements.get(message_tag)
        if message_decl is None:
            raise ValueError(f"{schema_file.name} declares no global {message_tag}")
        root_decl: XsdElement | None = message_decl
        root_tag = message_tag
        if not is_header:
            root_tag = f"{{{namespace}}}{definition.root}"
            root_decl = _child(message_decl, root_tag, model)
        if root_decl is None:
            raise ValueError(f"Document has no child {definition.root!r} in {schema_file.name}")
        prefixes = definition.namespaces

        header_model = header_extractor = item_model = item_extractor = None
        rule_extractor = rule_view = header_rule_extractor = header_view = None
        rule_required: frozenset[str] = frozenset()
        header_required: frozenset[str] = frozenset()
        item_steps: tuple[str, ...] = ()
        item_type = None
        decode = definition.decode
        if decode is not None:
            header_model = self._model(decode.command)
            header_extractor = self._extractor(
                decode.header, header_model, root_decl, namespace, prefixes, model, "header"
            )
            header_extractor_used = sorted(
                (
                    PIPELINE_HEADER_FIELDS
                    | {
                        name
                        for rule in definition.rules
                        if rule in self._rules
                        for name in self._rules[rule].header_fields
                    }
                )
                & set(decode.header)
            )
            header_rule_extractor, header_view, header_required = _view(
                header_extractor, header_model, header_extractor_used
            )
            if decode.item is not None and decode.item_command is not None:
                item = compile_path(decode.item, namespace, prefixes)
                item_decl = _walk(root_decl, item.steps, model)
                if item_decl is None or item.attribute:
                    raise ValueError(f"item path {decode.item!r} is not an element of the schema")
                if item_decl.type.name is None:
                    raise ValueError(f"item {decode.item!r} must have a named type in the XSD")
                item_type = item_decl.type.local_name
                item_steps = item.steps
                item_model = self._model(decode.item_command)
                item_extractor = self._extractor(
                    decode.fields, item_model, item_decl, namespace, prefixes, model, "item"
                )
                used = sorted(
                    {
                        name
                        for rule in definition.rules
                        if rule in self._rules
                        for name in self._rules[rule].item_fields
                    }
                    & set(decode.fields)
                )
                rule_extractor, rule_view, rule_required = _view(item_extractor, item_model, used)
            self._check_rules(definition, header_model, item_model)
        if definition.encode is not None:
            command = self._model(definition.encode.command)
            _check_encode_paths(definition.encode.elements, root_decl, namespace, prefixes, model)
            _check_encode_fields(definition.encode.elements, command)
        return Codec(
            definition=definition,
            source=path,
            namespace=namespace,
            message_tag=message_tag,
            root_tag=root_tag,
            header_model=header_model,
            header_extractor=header_extractor,
            item_steps=item_steps,
            item_model=item_model,
            item_extractor=item_extractor,
            item_type=item_type,
            rule_extractor=rule_extractor,
            rule_view=rule_view,
            rule_required=rule_required,
            header_rule_extractor=header_rule_extractor,
            header_view=header_view,
            header_required=header_required,
        )

    def _model(self, name: str) -> type[BaseModel]:
        model = self._models.get(name)
        if model is None:
            raise ValueError(f"unknown command {name!r}")
        return model

    def _extractor(
        self,
        fields: Mapping[str, FieldMap],
        command: type[BaseModel],
        start: XsdElement,
        namespace: str,
        prefixes: Mapping[str, str],
        model: xmlschema.XMLSchema,
        where: str,
    ) -> Extractor:
        known = command.model_fields
        unknown = sorted(set(fields) - set(known))
        if unknown:
            raise ValueError(f"{where} fields not in {command.__name__}: {', '.join(unknown)}")
        missing = sorted(
            name for name, info in known.items() if info.is_required() and name not in fields
        )
        if missing:
            raise ValueError(
                f"{where}: required fields of {command.__name__} not mapped: {', '.join(missing)}"
            )
        compiled: dict[str, tuple[CompiledPath, Callable[[str], object]]] = {}
        for name, field_map in fields.items():
            path = compile_path(field_map.path, namespace, prefixes)
            _check_path(path, start, model, f"{where} field {name!r}")
            compiled[name] = (path, DECODERS[field_map.convert])
        return Extractor(compiled)

    def _check_rules(
        self,
        definition: CodecDefinition,
        header_model: type[BaseModel] | None,
        item_model: type[BaseModel] | None,
    ) -> None:
        header_fields = set(header_model.model_fields) if header_model else set()
        item_fields = set(item_model.model_fields) if item_model else set()
        for name in definition.rules:
            requirement = self._rules.get(name)
            if requirement is None:
                raise ValueError(f"unknown rule {name!r}; known: {', '.join(sorted(self._rules))}")
            lacking = sorted(requirement.header_fields - header_fields) + sorted(
                requirement.item_fields - item_fields
            )
            if lacking:
                raise ValueError(f"rule {name!r} needs fields {', '.join(lacking)}")


def _view(
    extractor: Extractor, model: type[BaseModel], names: list[str]
) -> tuple[Extractor, Callable[..., Any], frozenset[str]]:
    """An extractor of ``names`` only, a light record type for them, and the required ones."""
    defaults: list[None] = [None] * len(names)
    view = namedtuple(f"{model.__name__}Fields", names, defaults=defaults)  # type: ignore[misc]
    required = frozenset(name for name in names if model.model_fields[name].is_required())
    return extractor.subset(names), view, required


def _child(decl: XsdElement, tag: str, model: xmlschema.XMLSchema) -> XsdElement | None:
    for child in decl.iterchildren():
        if child.name == tag and isinstance(child, XsdElement):
            return child
    content = getattr(decl.type, "content", None)
    if content is None or not hasattr(content, "iter_elements"):
        return None
    for particle in content.iter_elements():
        if isinstance(particle, XsdAnyElement) and particle.is_matching(tag):
            return model.maps.elements.get(tag)
    return None


def _walk(decl: XsdElement, steps: Iterable[str], model: xmlschema.XMLSchema) -> XsdElement | None:
    current: XsdElement | None = decl
    for step in steps:
        if current is None:
            return None
        current = _child(current, step, model)
    return current


def _check_path(
    path: CompiledPath, start: XsdElement, model: xmlschema.XMLSchema, what: str
) -> None:
    target = _walk(start, path.steps, model)
    if target is None:
        raise ValueError(f"{what}: path {path.text!r} does not exist in the schema")
    if path.attribute is not None and path.attribute not in target.attributes:
        raise ValueError(f"{what}: {path.text!r}: no attribute {path.attribute!r}")


def _check_encode_fields(elements: Iterable[EncodeElement], command: type[BaseModel]) -> None:
    """Every field an encode section reads exists on its model (fields or properties)."""
    for element in elements:
        if element.when is not None and element.when not in command.model_fields:
            raise ValueError(
                f"encode element {element.path!r}: {command.__name__} has no {element.when!r}"
            )
        name = element.field or element.each
        if name is None:
            continue
        if name not in command.model_fields and not isinstance(
            getattr(command, name, None), property
        ):
            raise ValueError(f"encode element {element.path!r}: {command.__name__} has no {name!r}")
        if element.each is not None and element.elements:
            inner = _item_model(command, element.each)
            if inner is None:
                raise ValueError(
                    f"encode element {element.path!r}: {command.__name__}.{name} is not a "
                    "list of models"
                )
            _check_encode_fields(element.elements, inner)


def _item_model(command: type[BaseModel], name: str) -> type[BaseModel] | None:
    info = command.model_fields.get(name)
    if info is None:
        return None
    for argument in getattr(info.annotation, "__args__", ()):
        if isinstance(argument, type) and issubclass(argument, BaseModel):
            return argument
    return None


def _check_encode_paths(
    elements: Iterable[EncodeElement],
    start: XsdElement,
    namespace: str,
    prefixes: Mapping[str, str],
    model: xmlschema.XMLSchema,
) -> None:
    for element in elements:
        path = compile_path(element.path, namespace, prefixes)
        _check_path(path, start, model, f"encode element {element.path!r}")
        if element.each is not None:
            target = _walk(start, path.steps, model)
            assert target is not None
            _check_encode_paths(element.elements, target, namespace, prefixes, model)
