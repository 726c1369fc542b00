"""Every XSD in ``xsd/``, compiled once.

``catalogue`` is one lxml schema that imports every file, so a single streaming pass
validates any supported message, enveloped or bare. ``item_schema`` gives, per repeating
item, a schema in which the item's type is a global element: the diagnostic pass uses it to
validate one transaction at a time with line numbers and paths, in bounded memory.
``model`` is the same set of files loaded by xmlschema, used to check codec paths against the
schema structure at start-up.
"""

from __future__ import annotations

import threading
from pathlib import Path
from xml.sax.saxutils import quoteattr

import xmlschema
from lxml import etree

XSD_NAMESPACE = "http://www.w3.org/2001/XMLSchema"


class SchemaError(Exception):
    """An XSD of the product cannot be loaded; the message names the file."""


def _trusted_parser() -> etree.XMLParser:
    # Our own schema files: local imports only, no network, no entities.
    return etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)


def _target_namespace(path: Path) -> str:
    try:
        root = etree.parse(str(path), _trusted_parser()).getroot()
    except etree.XMLSyntaxError as error:
        raise SchemaError(f"{path}: not well-formed: {error}") from error
    namespace = root.get("targetNamespace")
    if not namespace:
        raise SchemaError(f"{path}: no targetNamespace")
    return str(namespace)


class SchemaCatalogue:
    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        files = sorted(self.folder.glob("*.xsd"))
        if not files:
            raise SchemaError(f"{self.folder}: no XSD files")
        self.files: dict[str, Path] = {}
        for path in files:
            namespace = _target_namespace(path)
            if namespace in self.files:
                raise SchemaError(
                    f"{path}: namespace {namespace} already in {self.files[namespace]}"
                )
            self.files[namespace] = path
        imports = "".join(
            f"<xs:import namespace={quoteattr(namespace)} "
            f"schemaLocation={quoteattr(path.as_uri())}/>"
            for namespace, path in self.files.items()
        )
        self._wrapper = f'<xs:schema xmlns:xs="{XSD_NAMESPACE}">{imports}</xs:schema>'
        self._local = threading.local()
        self._model: xmlschema.XMLSchema | None = None
        # Compile now: a broken schema stops the start-up, not a request.
        self._local.catalogue = self._compile(self._wrapper, "catalogue")

    @property
    def catalogue(self) -> etree.XMLSchema:
        """The catalogue schema of this thread. lxml validators keep their error log on the
        instance, so each thread validating at once gets its own compiled copy."""
        schema: etree.XMLSchema | None = getattr(self._local, "catalogue", None)
        if schema is None:
            schema = self._local.catalogue = self._compile(self._wrapper, "catalogue")
        return schema

    def _compile(self, text: str, what: str) -> etree.XMLSchema:
        try:
            document = etree.fromstring(
                text.encode(), _trusted_parser(), base_url=self.folder.as_uri() + "/"
            )
            return etree.XMLSchema(document)
        except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as error:
            raise SchemaError(f"{self.folder}: {what} schema does not compile: {error}") from error

    def file_for(self, namespace: str) -> Path | None:
        return self.files.get(namespace)

    @property
    def model(self) -> xmlschema.XMLSchema:
        """All schemas loaded by xmlschema (built on first use: start-up checks only)."""
        if self._model is None:
            try:
                self._model = xmlschema.XMLSchema(self._wrapper, base_url=str(self.folder))
            except xmlschema.XMLSchemaException as error:
                raise SchemaError(f"{self.folder}: xmlschema cannot load: {error}") from error
        return self._model

    def item_schema(self, namespace: str, element: str, type_name: str) -> etree.XMLSchema:
        """A schema of ``namespace`` plus a global ``element`` of type ``type_name`` (one per
        thread, like the catalogue)."""
        key = (namespace, element)
        cache: dict[tuple[str, str], etree.XMLSchema] | None = getattr(self._local, "items", None)
        if cache is None:
            cache = self._local.items = {}
        if key not in cache:
            path = self.files[namespace]
            text = (
                f'<xs:schema xmlns:xs="{XSD_NAMESPACE}" xmlns:item={quoteattr(namespace)} '
                f'targetNamespace={quoteattr(namespace)} elementFormDefault="qualified">'
                f"<xs:include schemaLocation={quoteattr(path.as_uri())}/>"
                f'<xs:element name={quoteattr(element)} type="item:{type_name}"/>'
                "</xs:schema>"
            )
            cache[key] = self._compile(text, f"{element} item")
        return cache[key]
