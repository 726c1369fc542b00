"""Typed commands decoded from inbound messages and documents encoded into outbound ones."""
