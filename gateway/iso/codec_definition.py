"""The shape of a codec file, ``codecs/<message-id>.toml`` (documented in codecs/README.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ConverterName = Literal[
    "text",
    "int",
    "decimal",
    "amount",
    "currency",
    "date",
    "datetime",
    "bank_code",
    "uuid",
    "boolean",
    "base64",
]

MESSAGE_ID_PATTERN = r"^[a-z]{4}\.[0-9]{3}\.[0-9]{3}\.[0-9]{2}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMap(_Strict):
    """Where one command field comes from: a path relative to the item (or message root)."""

    path: str = Field(min_length=1)
    convert: ConverterName = "text"


class DecodeSection(_Strict):
    command: str
    """The command model the message header decodes into."""

    header: dict[str, FieldMap]
    """Header fields, paths relative to the message root element."""

    item: str | None = None
    """Path of the repeating item relative to the message root (``CdtTrfTxInf``)."""

    item_command: str | None = None
    fields: dict[str, FieldMap] = Field(default_factory=dict)
    """Item fields, paths relative to the item."""

    @model_validator(mode="after")
    def items_complete(self) -> DecodeSection:
        if (self.item is None) != (self.item_command is None):
            raise ValueError("'item' and 'item_command' go together")
        if self.item is None and self.fields:
            raise ValueError("'fields' needs an 'item'")
        return self


class EncodeElement(_Strict):
    """One element (or attribute) of an outbound document, listed in XSD order."""

    path: str = Field(min_length=1)
    field: str | None = None
    value: str | None = None
    convert: ConverterName = "text"
    when: str | None = None
    """Write this element only when that field is set (a constant inside an optional group,
    like ``ClrSysId/Cd = CNAPS`` of an optional agent)."""

    each: str | None = None
    """A list field: the element is repeated once per entry, with ``elements`` relative to
    it, or with the entry itself as text when there are no ``elements``."""

    elements: tuple[EncodeElement, ...] = ()

    @model_validator(mode="after")
    def one_source(self) -> EncodeElement:
        sources = [self.field is not None, self.value is not None, self.each is not None]
        if sum(sources) != 1:
            raise ValueError(f"{self.path}: give exactly one of 'field', 'value' or 'each'")
        if self.each is None and self.elements:
            raise ValueError(f"{self.path}: nested 'elements' need 'each'")
        return self


class EncodeSection(_Strict):
    command: str
    elements: tuple[EncodeElement, ...] = Field(min_length=1)


class CodecDefinition(_Strict):
    message: str = Field(pattern=MESSAGE_ID_PATTERN)
    schema_file: str = Field(alias="schema")
    title: str
    root: str
    """The element under ``Document`` (``FIToFICstmrCdtTrf``); for head.001, ``AppHdr``."""

    namespaces: dict[str, str] = Field(default_factory=dict)
    """Extra prefixes for paths that leave the message namespace (``chq:ChqNb``)."""

    rules: tuple[str, ...] = ()
    decode: DecodeSection | None = None
    encode: EncodeSection | None = None

    @model_validator(mode="after")
    def has_a_direction(self) -> CodecDefinition:
        if self.decode is None and self.encode is None:
            raise ValueError("a codec needs a [decode] or an [encode] section, or both")
        if self.rules and self.decode is None:
            raise ValueError("'rules' apply to decoded messages; add a [decode] section")
        return self

    @property
    def namespace(self) -> str:
        return f"urn:iso:std:iso:20022:tech:xsd:{self.message}"
