"""Decoding a validated message into commands: the header command, then item commands.

The validator reads only what the rules need; ingest needs whole commands. ``decode`` streams
the input again (it has already passed validation, so no schema here) and yields the typed
pydantic commands one item at a time, releasing each item, so a million-transaction package
decodes in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree
from pydantic import BaseModel, ValidationError

from gateway.configuration.settings import ParserSettings
from gateway.iso.codec_catalogue import Codec
from gateway.iso.extractor import Extractor
from gateway.iso.input_source import InputSource
from gateway.iso.namespaces import MESSAGE_TAG
from gateway.iso.safe_input import GuardedStream
from gateway.iso.safe_parsing import SAFE_PARSE_OPTIONS


class DecodingError(Exception):
    """A validated message could not be decoded: a codec defect, named with its place."""


@dataclass(frozen=True)
class Decoded:
    header: BaseModel
    """The header command (for a package: the ``Submit…Package`` command)."""

    items: Iterator[BaseModel]
    """The item commands, in document order; consume once."""


def _command(extractor: Extractor, model: type[BaseModel], element: etree._Element) -> BaseModel:
    values, failures = extractor.extract(element)
    if failures:
        first = failures[0]
        raise DecodingError(f"line {element.sourceline}: {first.path}: {first.reason}")
    try:
        return model(**values)
    except ValidationError as error:
        raise DecodingError(f"line {element.sourceline}: {model.__name__}: {error}") from error


def decode_tree(root: etree._Element, codec: Codec) -> list[BaseModel]:
    """The commands ``decode`` yields, read from a message already parsed whole and validated
    (a single submission: no second parse). ``root`` is the envelope or the document."""
    if codec.header_extractor is None or codec.header_model is None:
        raise DecodingError(f"{codec.message} has no [decode] section")
    document = root[-1] if root.tag == MESSAGE_TAG and len(root) else root
    body = document if codec.root_tag == codec.message_tag else document.find(codec.root_tag)
    if document.tag != codec.message_tag or body is None:
        raise DecodingError(f"the message is not a {codec.message}")
    commands = [_command(codec.header_extractor, codec.header_model, body)]
    if codec.item_tag:
        assert codec.item_extractor is not None and codec.item_model is not None
        commands.extend(
            _command(codec.item_extractor, codec.item_model, element)
            for element in body.iter(codec.item_tag)
        )
    return commands


def decode(source: InputSource, codec: Codec, limits: ParserSettings) -> Iterator[BaseModel]:
    """Yield the header command first, then one command per item."""
    if codec.header_extractor is None or codec.header_model is None:
        raise DecodingError(f"{codec.message} has no [decode] section")
    tags = [codec.root_tag] + ([codec.item_tag] if codec.item_tag else [])
    header_done = False
    with source.open() as stream:
        guarded = GuardedStream(stream, limits)
        events = etree.iterparse(guarded, events=("start", "end"), tag=tags, **SAFE_PARSE_OPTIONS)
        root: etree._Element | None = None
        for event, element in events:
            if element.tag == codec.root_tag:
                if event == "start":
                    root = element
                elif not header_done:
                    header_done = True
                    yield _command(codec.header_extractor, codec.header_model, element)
                continue
            if event != "end" or root is None:
                continue
            assert codec.item_extractor is not None and codec.item_model is not None
            if not header_done:
                header_done = True
                yield _command(codec.header_extractor, codec.header_model, root)
            yield _command(codec.item_extractor, codec.item_model, element)
            previous = element.getprevious()
            if previous is not None and previous.tag == element.tag:
                element.getparent().remove(previous)
            element.clear()
            guarded.release()
