"""The namespaces every layer names: the business header's and the product's envelope."""

HEADER_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:head.001.001.02"
ENVELOPE_NAMESPACE = "urn:isogw:xsd:envelope.001.01"
MESSAGE_TAG = f"{{{ENVELOPE_NAMESPACE}}}Message"
"""The envelope's root: ``Message`` holding ``AppHdr`` then ``Document``."""
