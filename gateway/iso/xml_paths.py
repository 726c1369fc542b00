"""Readable XPaths (local names, positions among same-named siblings) for report lines."""

from __future__ import annotations

import re

from lxml import etree

_CLARK = re.compile(r"\{(?:urn|https?):[^}]*\}")


def strip_namespaces(text: str) -> str:
    """``Element '{urn:…}Amt': …`` → ``Element 'Amt': …``."""
    return _CLARK.sub("", text)


def step(element: etree._Element, always_index: frozenset[str] = frozenset()) -> str:
    tag = element.tag
    name = str(etree.QName(tag).localname)
    parent = element.getparent()
    if parent is None:
        return name
    same = [sibling for sibling in parent.iterchildren(tag)]
    if len(same) == 1 and tag not in always_index:
        return name
    return f"{name}[{same.index(element) + 1}]"


def named_path(
    element: etree._Element,
    stop: etree._Element | None = None,
    always_index: frozenset[str] = frozenset(),
) -> str:
    """The path of ``element`` from the document root (or relative to ``stop``)."""
    steps: list[str] = []
    current: etree._Element | None = element
    while current is not None and current is not stop:
        if isinstance(current.tag, str):
            steps.append(step(current, always_index))
        current = current.getparent()
    return "/" + "/".join(reversed(steps))
