"""Our usage-guideline schemas (xsd/) are structural restrictions of the official ISO 20022
schemas of the same id (../shared/iso20022-xsd/), as xsd/README.md requires.

test_schema_conformance.py checks that the valid *samples* are officially valid; this module checks
the *schemas* themselves, so a loosening that no sample exercises is caught too. The checker walks
our global elements and the official ones in parallel (memoized by type pair, so recursive types
terminate) and compares at each path:

- content models: every element of ours exists in the official sequence or choice, in the official
  relative order; occurrences narrowed (our minOccurs >= official, our maxOccurs <= official);
  every official element with minOccurs >= 1 is kept; choice branches are a subset; the model
  group's own occurrences are narrowed too;
- element declarations: not nillable where the official is not, a default or fixed value only as
  official, official identity constraints kept;
- attributes: ours are a subset, required official attributes stay required, their types narrowed;
- simple types: same primitive type and a built-in base derived from the official one, same
  whiteSpace; an enumeration of ours is proven value by value with the official type's own
  validation; otherwise an official enumeration must be kept, and length, digit and bound facets
  must be at least as strict; an official pattern must reappear in our derivation chain (up to
  trivial spelling such as {3,3} = {3});
- wildcards: namespaces a subset, processContents at least as strict; whatever our wildcard lets
  through that the official schema declares (or, if the official wildcard is strict, must declare)
  is compared against the official declaration.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from xmlschema.validators import (
    XsdAnyElement,
    XsdAtomicBuiltin,
    XsdAtomicRestriction,
    XsdElement,
    XsdGroup,
)

PROJECT = Path(__file__).resolve().parents[1]
XSD_DIR = PROJECT / "xsd"
OFFICIAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "iso20022-xsd"
OWN_SCHEMAS = frozenset({"envelope.001.01", "cheque.001.01"})  # no official counterpart
RESTRICTED = sorted(path for path in XSD_DIR.glob("*.xsd") if path.stem not in OWN_SCHEMAS)

XSD_NS = "http://www.w3.org/2001/XMLSchema"
STRICTNESS = {"skip": 0, "lax": 1, "strict": 2}


def local(qname: str | None) -> str:
    return (qname or "").rpartition("}")[2]


def namespace_of(qname: str | None) -> str:
    return (qname or "")[1:].partition("}")[0] if (qname or "").startswith("{") else ""


def fmt_max(value: int | None) -> str:
    return "unbounded" if value is None else str(value)


def fmt_bound(bound: tuple[Any, bool] | None, lower: bool) -> str:
    if bound is None:
        return "none"
    sign = (">" if lower else "<") + ("" if bound[1] else "=")
    return f"{sign} {bound[0]}"


def normalize_regex(regex: str) -> str:
    """Trivial spelling differences only: {n,n} = {n}, {0,1} = ?."""
    regex = re.sub(r"\{(\d+),\1\}", r"{\1}", regex)
    return regex.replace("{0,1}", "?")


# --- simple types: effective facets along the derivation chain ------------------------------


@dataclass
class Facets:
    min_length: int = 0
    max_length: int | None = None
    total_digits: int | None = None
    fraction_digits: int | None = None
    lower: tuple[Any, bool] | None = None  # (value, exclusive)
    upper: tuple[Any, bool] | None = None
    enumeration: list[str] | None = None  # lexical values of the most derived enumeration
    patterns: tuple[frozenset[str], ...] = ()  # one set per derivation step (ANDed; set ORed)
    unsupported: tuple[str, ...] = ()


def builtin_of(simple: Any) -> Any:
    while not isinstance(simple, XsdAtomicBuiltin) and simple.base_type is not None:
        simple = simple.base_type
    return simple


def smaller(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


def tighter_bound(a: tuple[Any, bool] | None, b: tuple[Any, bool], lower: bool) -> tuple:
    if a is None:
        return b
    if a[0] == b[0]:
        return (a[0], a[1] or b[1])
    return (max if lower else min)(a, b, key=lambda bound: bound[0])


def effective_facets(simple: Any) -> Facets:
    facets = Facets()
    patterns: list[frozenset[str]] = []
    unsupported: list[str] = []
    step = simple
    while isinstance(step, XsdAtomicRestriction):
        for key, facet in step.facets.items():
            name = local(key)
            if key is None or name == "whiteSpace":
                continue
            if name == "enumeration":
                if facets.enumeration is None:
                    facets.enumeration = [elem.get("value") for elem in facet]
            elif name == "pattern":
                patterns.append(frozenset(normalize_regex(r) for r in facet.regexps))
            elif name in ("length", "minLength"):
                facets.min_length = max(facets.min_length, facet.value)
                if name == "length":
                    facets.max_length = smaller(facets.max_length, facet.value)
            elif name == "maxLength":
                facets.max_length = smaller(facets.max_length, facet.value)
            elif name in ("totalDigits", "fractionDigits"):
                attr = "total_digits" if name == "totalDigits" else "fraction_digits"
                setattr(facets, attr, smaller(getattr(facets, attr), facet.value))
            elif name in ("minInclusive", "minExclusive"):
                bound = (facet.value, name == "minExclusive")
                facets.lower = tighter_bound(facets.lower, bound, lower=True)
            elif name in ("maxInclusive", "maxExclusive"):
                bound = (facet.value, name == "maxExclusive")
                facets.upper = tighter_bound(facets.upper, bound, lower=False)
            else:
                unsupported.append(name)
        step = step.base_type
    if builtin_of(simple).is_derived(simple.maps.types[f"{{{XSD_NS}}}integer"]):
        facets.fraction_digits = 0
    facets.patterns = tuple(patterns)
    facets.unsupported = tuple(unsupported)
    return facets


def bound_at_least_as_strict(ours: tuple | None, official: tuple | None, lower: bool) -> bool:
    if official is None:
        return True
    if ours is None:
        return False
    if ours[0] == official[0]:
        return ours[1] or not official[1]
    return ours[0] > official[0] if lower else ours[0] < official[0]


# --- the checker ---------------------------------------------------------------------------------


class RestrictionChecker:
    def __init__(self, label: str, ours: xmlschema.XMLSchema, official: xmlschema.XMLSchema):
        self.label = label
        self.ours = ours
        self.official = official
        self.problems: list[str] = []
        self._seen: set[tuple[str, int, int]] = set()

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{self.label}: {path}: {message}")

    def first_visit(self, kind: str, ours: object, official: object) -> bool:
        key = (kind, id(ours), id(official))
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def run(self) -> list[str]:
        if self.ours.target_namespace != self.official.target_namespace:
            self.problem(
                "/",
                f"target namespace {self.ours.target_namespace!r}, "
                f"official {self.official.target_namespace!r}",
            )
            return self.problems
        if self.ours.maps.substitution_groups:
            self.problem("/", "substitution groups are not supported by this checker")
        for name, element in self.ours.elements.items():
            path = f"/{local(name)}"
            official = self.official.elements.get(name)
            if official is None:
                self.problem(path, "not a global element of the official schema")
            else:
                self.element(path, element, official)
        return self.problems

    # elements and types

    def element(self, path: str, ours: XsdElement, official: XsdElement) -> None:
        if ours.nillable and not official.nillable:
            self.problem(path, "nillable, official is not")
        if official.fixed is not None and ours.fixed != official.fixed:
            self.problem(path, f"fixed value {ours.fixed!r}, official {official.fixed!r}")
        # A default or fixed value fills empty content, which the official type may reject.
        ours_value = ours.default if ours.fixed is None else ours.fixed
        official_value = official.default if official.fixed is None else official.fixed
        if ours_value is not None and ours_value != official_value:
            self.problem(path, f"value constraint {ours_value!r}, official {official_value!r}")
        kept = {identity.name for identity in ours.identities}
        for identity in official.identities:
            if identity.name not in kept:
                self.problem(path, f"official identity constraint {identity.name} dropped")
        self.element_type(path, ours.type, official.type)

    def element_type(self, path: str, ours: Any, official: Any) -> None:
        if not self.first_visit("type", ours, official):
            return
        if ours.is_simple() or official.is_simple():
            if not (ours.is_simple() and official.is_simple()):
                self.problem(path, "simple type where the official is complex, or vice versa")
            else:
                self.simple(path, ours, official)
            return
        if ours.mixed and not official.mixed:
            self.problem(path, "mixed content, official is not mixed")
        self.attributes(path, ours, official)
        if official.has_simple_content() or ours.has_simple_content():
            if not (official.has_simple_content() and ours.has_simple_content()):
                self.problem(path, "simple content where the official has elements, or vice versa")
            else:
                self.simple(path, ours.content, official.content)
            return
        self.group(path, ours.content, official.content)

    def attributes(self, path: str, ours: Any, official: Any) -> None:
        official_attributes = official.attributes
        for name, attribute in ours.attributes.items():
            if name is None:  # anyAttribute
                wildcard = official_attributes.get(None)
                if wildcard is None:
                    self.problem(f"{path}/@*", "attribute wildcard not in the official schema")
                else:
                    self.wildcard_namespaces(f"{path}/@*", attribute, wildcard)
                continue
            at = f"{path}/@{local(name)}"
            counterpart = official_attributes.get(name)
            if counterpart is None:
                self.problem(at, "not in the official schema")
                continue
            if counterpart.use == "required" and attribute.use != "required":
                self.problem(at, f"use {attribute.use}, official required")
            if counterpart.fixed is not None and attribute.fixed != counterpart.fixed:
                self.problem(at, f"fixed value {attribute.fixed!r}, official {counterpart.fixed!r}")
            self.simple(at, attribute.type, counterpart.type)
        for name, counterpart in official_attributes.items():
            if name is not None and counterpart.use == "required" and name not in ours.attributes:
                self.problem(f"{path}/@{local(name)}", "required by the official schema, missing")

    # content models

    def group(self, path: str, ours: XsdGroup, official: XsdGroup) -> None:
        self.occurs(f"{path} (content model)", ours, official)
        if any(isinstance(p, XsdGroup) for p in [*ours, *official]):
            self.problem(path, "nested model groups are not supported by this checker")
            return
        model = official.model
        if ours.model != model and len(ours) > 1 and len(official) > 1:
            self.problem(path, f"{ours.model} where the official has a {model}")
            return
        if model == "all":
            self.problem(path, "xs:all is not supported by this checker")
            return
        matched: set[int] = set()
        last, last_name = -1, ""
        for particle in ours:
            name = self.particle_name(particle)
            index = self.find(particle, official, after=last if model == "sequence" else -1)
            if index is None:
                self.problem(f"{path}/{name}", "not in the official schema")
                continue
            if model == "sequence":
                if index <= last:
                    self.problem(
                        f"{path}/{name}",
                        f"out of the official order (official has it before {last_name})",
                    )
                else:
                    last, last_name = index, name
            matched.add(index)
            self.particle(f"{path}/{name}", particle, official[index])
        if model == "sequence":
            for index, counterpart in enumerate(official):
                if counterpart.min_occurs >= 1 and index not in matched:
                    self.problem(
                        f"{path}/{self.particle_name(counterpart)}",
                        f"required by the official schema (minOccurs {counterpart.min_occurs}), "
                        "missing",
                    )
        elif not len(ours) and not official.is_emptiable():
            self.problem(path, "no branch of the official choice is kept, content is empty")

    @staticmethod
    def particle_name(particle: Any) -> str:
        return local(particle.name) if isinstance(particle, XsdElement) else "xs:any"

    def find(self, particle: Any, official: XsdGroup, after: int) -> int | None:
        """Index of the official particle ours corresponds to: the element of the same name, or
        else (for a wildcard, or an element an official wildcard admits) the first official
        wildcard after `after`, falling back to any official wildcard."""
        if isinstance(particle, XsdElement):
            for index, counterpart in enumerate(official):
                if isinstance(counterpart, XsdElement) and counterpart.name == particle.name:
                    return index
        wildcards = [i for i, p in enumerate(official) if isinstance(p, XsdAnyElement)]
        if isinstance(particle, XsdElement):
            namespace = namespace_of(particle.name)
            wildcards = [i for i in wildcards if official[i].is_namespace_allowed(namespace)]
        later = [i for i in wildcards if i > after]
        return (later or wildcards or [None])[0]

    def occurs(self, path: str, ours: Any, official: Any) -> None:
        if ours.min_occurs < official.min_occurs:
            self.problem(path, f"minOccurs {ours.min_occurs} < official {official.min_occurs}")
        if official.max_occurs is not None and (
            ours.max_occurs is None or ours.max_occurs > official.max_occurs
        ):
            self.problem(
                path,
                f"maxOccurs {fmt_max(ours.max_occurs)} > official {fmt_max(official.max_occurs)}",
            )

    def particle(self, path: str, ours: Any, official: Any) -> None:
        self.occurs(path, ours, official)
        if isinstance(ours, XsdElement) and isinstance(official, XsdElement):
            self.element(path, ours, official)
        elif isinstance(ours, XsdAnyElement) and isinstance(official, XsdAnyElement):
            self.wildcard(path, ours, official)
        elif isinstance(ours, XsdElement):
            self.admitted_by_wildcard(path, ours, official)
        else:
            self.problem(path, "wildcard where the official schema has an element")

    # wildcards

    @staticmethod
    def explicit_namespaces(wildcard: XsdAnyElement) -> set[str]:
        tokens = {"##targetNamespace": wildcard.target_namespace, "##local": ""}
        return {tokens.get(ns, ns) for ns in wildcard.namespace}

    def wildcard_namespaces(self, path: str, ours: Any, official: Any) -> None:
        if "##any" in official.namespace:
            subset = True
        elif "##any" in ours.namespace:
            subset = False
        elif "##other" in ours.namespace:
            subset = (
                "##other" in official.namespace
                and ours.target_namespace == official.target_namespace
            )
        else:
            subset = all(official.is_namespace_allowed(ns) for ns in self.explicit_namespaces(ours))
        if not subset:
            self.problem(
                path,
                f"namespaces {sorted(ours.namespace)} not within official "
                f"{sorted(official.namespace)}",
            )
        if STRICTNESS[ours.process_contents] < STRICTNESS[official.process_contents]:
            self.problem(
                path,
                f"processContents {ours.process_contents} looser than official "
                f"{official.process_contents}",
            )

    def wildcard(self, path: str, ours: XsdAnyElement, official: XsdAnyElement) -> None:
        if not self.first_visit("wildcard", ours, official):
            return
        self.wildcard_namespaces(path, ours, official)
        if ours.process_contents == "skip":
            return  # nothing validated by ours; official must then be skip too (checked above)
        # Every global declaration our wildcard validates must be acceptable officially.
        for name, element in self.ours.maps.elements.items():
            namespace = namespace_of(name)
            if namespace != XSD_NS and ours.is_namespace_allowed(namespace):
                self.admitted_by_wildcard(f"{path}/{local(name)}", element, official)
        # A lax wildcard of ours lets through anything it has no declaration for.
        if ours.process_contents == "lax" and official.process_contents != "skip":
            for name in self.official.maps.elements:
                namespace = namespace_of(name)
                if (
                    namespace != XSD_NS
                    and ours.is_namespace_allowed(namespace)
                    and official.is_namespace_allowed(namespace)
                    and name not in self.ours.maps.elements
                ):
                    self.problem(
                        f"{path}/{local(name)}",
                        "validated by the official wildcard, but our lax wildcard has no "
                        "declaration for it",
                    )

    def admitted_by_wildcard(self, path: str, ours: XsdElement, official: XsdAnyElement) -> None:
        """Our element (local, or a global our wildcard admits) against an official wildcard."""
        if not official.is_namespace_allowed(namespace_of(ours.name)):
            self.problem(path, f"namespace not allowed by the official wildcard {official}")
            return
        if official.process_contents == "skip":
            return
        declaration = self.official.maps.elements.get(ours.name)
        if declaration is not None:
            self.element(path, ours, declaration)
        elif official.process_contents == "strict":
            self.problem(path, "the official wildcard is strict and has no declaration for it")
        # else: lax without an official declaration, nothing is checked officially

    # simple types

    def simple(self, path: str, ours: Any, official: Any) -> None:
        if not self.first_visit("simple", ours, official):
            return
        for simple in (ours, official):
            if simple.is_list() or simple.is_union():
                self.problem(path, "list and union types are not supported by this checker")
                return
        what = f"{path} (type {ours.local_name})"
        ours_builtin, official_builtin = builtin_of(ours), builtin_of(official)
        if ours.primitive_type.name != official.primitive_type.name:
            self.problem(
                what,
                f"primitive type {ours.primitive_type.prefixed_name}, "
                f"official {official.primitive_type.prefixed_name}",
            )
            return
        if not ours_builtin.is_derived(official_builtin):
            self.problem(
                what,
                f"built-in base {ours_builtin.prefixed_name} is not derived from official "
                f"{official_builtin.prefixed_name}",
            )
        if ours.white_space != official.white_space:
            self.problem(what, f"whiteSpace {ours.white_space}, official {official.white_space}")
        mine, theirs = effective_facets(ours), effective_facets(official)
        for name in mine.unsupported + theirs.unsupported:
            self.problem(what, f"facet {name} is not supported by this checker")
        if mine.enumeration is not None:
            # A finite value space: check every value against the official type itself.
            values = [value for value in mine.enumeration if ours.is_valid(value)]
            rejected = [value for value in values if not official.is_valid(value)]
            if rejected and theirs.enumeration is not None:
                self.problem(what, f"enumeration values {rejected} not in the official enumeration")
            elif rejected:
                self.problem(
                    what,
                    f"enumeration values {rejected} not valid under the official type "
                    f"{official.local_name}",
                )
            return
        if theirs.enumeration is not None:
            self.problem(what, "the official type is an enumeration, ours is not")
            return
        if mine.min_length < theirs.min_length:
            self.problem(what, f"minLength {mine.min_length} < official {theirs.min_length}")
        for facet in ("max_length", "total_digits", "fraction_digits"):
            limit, value = getattr(theirs, facet), getattr(mine, facet)
            if limit is not None and (value is None or value > limit):
                name = re.sub(r"_(\w)", lambda m: m.group(1).upper(), facet)
                self.problem(what, f"{name} {value} looser than official {limit}")
        try:
            lower_ok = bound_at_least_as_strict(mine.lower, theirs.lower, lower=True)
            upper_ok = bound_at_least_as_strict(mine.upper, theirs.upper, lower=False)
        except TypeError:
            lower_ok = upper_ok = False
        if not lower_ok:
            self.problem(
                what,
                f"lower bound {fmt_bound(mine.lower, True)} looser than official "
                f"{fmt_bound(theirs.lower, True)}",
            )
        if not upper_ok:
            self.problem(
                what,
                f"upper bound {fmt_bound(mine.upper, False)} looser than official "
                f"{fmt_bound(theirs.upper, False)}",
            )
        # Regular-language inclusion is not decided here: an official pattern counts as kept
        # when one derivation step of ours allows only (a subset of) the same regexes.
        for official_patterns in theirs.patterns:
            if not any(step <= official_patterns for step in mine.patterns):
                self.problem(
                    what,
                    f"official pattern {sorted(official_patterns)} not kept in our derivation "
                    f"chain (ours: {[sorted(step) for step in mine.patterns]}), so narrowing is "
                    "not proven; restrict a type that keeps the official pattern",
                )


# --- entry points --------------------------------------------------------------------------------


def official_path(name: str) -> Path:
    if not OFFICIAL_DIR.is_dir():
        pytest.fail(
            f"official ISO 20022 schemas not found at {OFFICIAL_DIR} "
            "(the shared/ directory must sit beside the project, as in CI)"
        )
    path = OFFICIAL_DIR / name
    if not path.is_file():
        pytest.fail(f"no official schema {path} for xsd/{name}")
    return path


@cache
def load_official(path: Path) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(path))


def check_restriction(ours_file: Path, official_file: Path) -> list[str]:
    """Readable problems, empty if ours is a restriction of the official schema."""
    ours = xmlschema.XMLSchema(str(ours_file))
    label = ours_file.name.removesuffix(".xsd")
    return RestrictionChecker(label, ours, load_official(official_file)).run()


@pytest.mark.parametrize("path", RESTRICTED, ids=lambda path: path.name)
def test_schema_restricts_the_official_schema(path: Path) -> None:
    problems = check_restriction(path, official_path(path.name))
    assert not problems, "\n".join(problems)


def test_every_product_schema_but_our_own_is_checked() -> None:
    assert RESTRICTED, f"no schemas found in {XSD_DIR}"
    own = {path.stem for path in XSD_DIR.glob("*.xsd")} - {path.stem for path in RESTRICTED}
    assert own == OWN_SCHEMAS


# --- negative tests: the checker notices each kind of loosening ----------------------------------

Mutate = Callable[[str, str, str], list[str]]


@pytest.fixture
def mutated(tmp_path: Path) -> Mutate:
    """Copy xsd/ to tmp_path, replace one text in one file, return the checker's problems."""
    copy = tmp_path / "xsd"
    shutil.copytree(XSD_DIR, copy)

    def run(name: str, old: str, new: str) -> list[str]:
        target = copy / name
        text = target.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} must occur exactly once in xsd/{name}"
        target.write_text(text.replace(old, new), encoding="utf-8")
        return check_restriction(target, official_path(name))

    return run


def assert_reported(problems: Iterable[str], expected: str) -> None:
    problems = list(problems)
    assert any(expected in problem for problem in problems), (
        f"expected a problem containing {expected!r}, got:\n" + "\n".join(problems)
    )


PACS008 = "pacs.008.001.08.xsd"
GRPHDR = "pacs.008.001.08: /Document/FIToFICstmrCdtTrf/GrpHdr"
MSG_ID = '<xs:element name="MsgId" type="RestrictedFINXMax35Text"/>'
CRE_DT_TM = '<xs:element name="CreDtTm" type="ISODateTime"/>'


def test_an_element_the_official_schema_lacks_is_reported(mutated: Mutate) -> None:
    problems = mutated(
        PACS008, MSG_ID, MSG_ID + '\n<xs:element name="Foo" type="Max35Text" minOccurs="0"/>'
    )
    assert_reported(problems, f"{GRPHDR}/Foo: not in the official schema")


def test_swapped_elements_are_reported(mutated: Mutate) -> None:
    problems = mutated(PACS008, f"{MSG_ID}\n      {CRE_DT_TM}", f"{CRE_DT_TM}\n{MSG_ID}")
    assert_reported(problems, f"{GRPHDR}/MsgId: out of the official order")


def test_a_raised_max_occurs_is_reported(mutated: Mutate) -> None:
    problems = mutated(
        PACS008,
        '<xs:element name="GrpHdr" type="GroupHeader93"/>',
        '<xs:element name="GrpHdr" type="GroupHeader93" maxOccurs="2"/>',
    )
    assert_reported(problems, f"{GRPHDR}: maxOccurs 2 > official 1")


def test_a_lowered_min_occurs_is_reported(mutated: Mutate) -> None:
    problems = mutated(PACS008, CRE_DT_TM, CRE_DT_TM.replace("/>", ' minOccurs="0"/>'))
    assert_reported(problems, f"{GRPHDR}/CreDtTm: minOccurs 0 < official 1")


def test_a_dropped_required_element_is_reported(mutated: Mutate) -> None:
    problems = mutated(PACS008, MSG_ID, "")
    assert_reported(problems, f"{GRPHDR}/MsgId: required by the official schema")


def test_an_enumeration_value_outside_the_official_enumeration_is_reported(
    mutated: Mutate,
) -> None:
    clrg = '<xs:enumeration value="CLRG"/>'
    problems = mutated(PACS008, clrg, clrg + '<xs:enumeration value="XXXX"/>')
    assert_reported(problems, f"{GRPHDR}/SttlmInf/SttlmMtd (type SettlementMethod1Code)")
    assert_reported(problems, "['XXXX'] not in the official enumeration")


def test_an_enumeration_value_the_official_facets_reject_is_reported(mutated: Mutate) -> None:
    # Official ExternalClearingSystemIdentification1Code: 1 to 5 characters, no enumeration.
    cnaps = '<xs:enumeration value="CNAPS"/>'
    problems = mutated(PACS008, cnaps, cnaps + '<xs:enumeration value="CNAPS2"/>')
    assert_reported(problems, f"{GRPHDR}/InstgAgt/FinInstnId/ClrSysMmbId/ClrSysId/Cd")
    assert_reported(problems, "['CNAPS2'] not valid under the official type")


def type_block(name: str, type_name: str) -> str:
    """The text of one named simpleType in xsd/<name>."""
    text = (XSD_DIR / name).read_text(encoding="utf-8")
    pattern = rf'<xs:simpleType name="{type_name}">.*?</xs:simpleType>'
    match = re.search(pattern, text, re.S)
    assert match, f"simple type {type_name} not found in xsd/{name}"
    return match.group(0)


def test_looser_facets_are_reported(mutated: Mutate) -> None:
    # Official ActiveCurrencyAndAmount_SimpleType: fractionDigits 5, totalDigits 18, >= 0.
    block = type_block(PACS008, "ActiveCurrencyAndAmount_SimpleType")
    loose = block.replace('<xs:fractionDigits value="2"/>', '<xs:fractionDigits value="6"/>')
    loose = loose.replace('<xs:totalDigits value="18"/>', '<xs:totalDigits value="19"/>')
    loose = loose.replace('<xs:minInclusive value="0"/>', "")
    problems = mutated(PACS008, block, loose)
    amount = "/CdtTrfTxInf/IntrBkSttlmAmt (type ActiveCurrencyAndAmount_SimpleType)"
    assert_reported(problems, f"{amount}: fractionDigits 6 looser than official 5")
    assert_reported(problems, f"{amount}: totalDigits 19 looser than official 18")
    assert_reported(problems, f"{amount}: lower bound none looser than official >= 0")


def test_a_wider_string_is_reported(mutated: Mutate) -> None:
    problems = mutated(
        "head.001.001.02.xsd",
        '<xs:minLength value="1"/>\n      <xs:maxLength value="35"/>',
        '<xs:maxLength value="36"/>',
    )
    assert_reported(problems, "head.001.001.02: /AppHdr/")
    assert_reported(problems, "(type Max35Text): maxLength 36 looser than official 35")
    assert_reported(problems, "(type Max35Text): minLength 0 < official 1")


def test_a_different_primitive_type_is_reported(mutated: Mutate) -> None:
    problems = mutated(
        "head.001.001.02.xsd",
        '<xs:restriction base="xs:dateTime"/>',
        '<xs:restriction base="xs:string"/>',
    )
    assert_reported(
        problems,
        "head.001.001.02: /AppHdr/CreDt (type ISODateTime): primitive type xs:string, "
        "official xs:dateTime",
    )


def test_a_dropped_official_pattern_is_reported(mutated: Mutate) -> None:
    # Official UUIDv4Identifier has a pattern; ours may not drop it.
    block = type_block(PACS008, "UUIDv4Identifier")
    problems = mutated(PACS008, block, re.sub(r"<xs:pattern [^>]*/>", "", block))
    assert_reported(problems, "/CdtTrfTxInf/PmtId/UETR (type UUIDv4Identifier): official pattern")


def test_a_choice_branch_the_official_choice_lacks_is_reported(mutated: Mutate) -> None:
    fiid = '<xs:element name="FIId" type="BranchAndFinancialInstitutionIdentification6"/>'
    problems = mutated(
        "head.001.001.02.xsd", fiid, fiid + '<xs:element name="Bank" type="Max35Text"/>'
    )
    assert_reported(problems, "head.001.001.02: /AppHdr/Fr/Bank: not in the official schema")


def test_attributes_are_compared(mutated: Mutate) -> None:
    ccy = '<xs:attribute name="Ccy" type="ActiveCurrencyCode" use="required"/>'
    problems = mutated(
        PACS008, ccy, '<xs:attribute name="Cur" type="ActiveCurrencyCode" use="required"/>'
    )
    amount = f"{GRPHDR.replace('/GrpHdr', '')}/CdtTrfTxInf/IntrBkSttlmAmt"
    assert_reported(problems, f"{amount}/@Cur: not in the official schema")
    assert_reported(problems, f"{amount}/@Ccy: required by the official schema, missing")


def test_a_looser_wildcard_is_reported(mutated: Mutate) -> None:
    problems = mutated(
        "head.001.001.02.xsd",
        'namespace="http://www.w3.org/2000/09/xmldsig#" processContents="lax"',
        'namespace="##any" processContents="skip"',
    )
    assert_reported(problems, "/AppHdr/Sgntr/xs:any: processContents skip looser than official lax")


def test_a_wider_wildcard_namespace_is_reported(mutated: Mutate) -> None:
    problems = mutated(
        "head.001.001.02.xsd",
        'namespace="http://www.w3.org/2000/09/xmldsig#"',
        'namespace="##other"',
    )
    assert_reported(problems, "/AppHdr/Sgntr/xs:any: namespaces ['##other'] not within official")


def test_a_wildcard_as_wide_as_the_official_one_is_accepted(mutated: Mutate) -> None:
    # Our cheque Envlp widened back to the official ##any lax is still a restriction.
    problems = mutated(
        "pacs.003.001.08.xsd",
        'namespace="urn:isogw:xsd:cheque.001.01" processContents="strict"',
        'namespace="##any" processContents="lax"',
    )
    assert problems == []


def test_an_extra_global_element_is_reported(mutated: Mutate) -> None:
    root = '<xs:element name="Document" type="Document"/>'
    problems = mutated(PACS008, root, root + '<xs:element name="Extra" type="Max35Text"/>')
    assert_reported(problems, "pacs.008.001.08: /Extra: not a global element of the official")
