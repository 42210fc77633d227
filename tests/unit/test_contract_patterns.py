"""Every `pattern` in infra/openapi.json means the same to the server as to anyone who reads the contract.

The server checks patterns with pydantic, that is Rust's regex crate: bodies, and Powertools' path, query and
header parameters alike; logic code that re-checks an id uses Python's `re` with fullmatch. OpenAPI patterns are
ECMA-262 regular expressions, read by JavaScript clients and validators with or without the u flag. The dialects
disagree on shorthands (\\s holds U+0085 in Python and Rust, U+FEFF in ECMA-262, U+001C..U+001F in Python only;
\\d and \\w are Unicode in Python and Rust, ASCII in ECMA-262), on `.`, on `$` (Python's also matches before a
final newline), on class set operations (Rust's [a&&b], [a--b], [a~~b]), on lookarounds and inline flags (not in
Rust's engine), and, without the u flag, an ECMA-262 engine sees a character outside the BMP as two.

So the patterns keep to a core every dialect reads alike, checked twice: by construct (test_patterns_keep_to_
the_common_core), and by behaviour on characters where the dialects part (test_server_and_contract_agree), the
ECMA-262 side being a translation of the pattern into Python that spells out ECMA-262's shorthands. No JavaScript
engine is needed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import StringConstraints, TypeAdapter, ValidationError
from pydantic_core import SchemaError

OPENAPI = Path(__file__).resolve().parents[2] / "infra" / "openapi.json"

# ECMA-262 WhiteSpace and LineTerminator, the set its \s stands for (as the inside of a Python class).
ECMA_SPACE = r"\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
ECMA_SHORTHANDS = {"s": ECMA_SPACE, "d": "0-9", "w": "A-Za-z0-9_"}
# ECMA-262's syntax characters, which every dialect lets a pattern escape ('-' too, inside a class).
SYNTAX = set("^$\\.*+?()[]{}|/")
CONTROL_ESCAPES = set("tnrfv")


# --------------------------------------------------------------------------------- the patterns of the contract
def contract_patterns() -> list[tuple[str, str]]:
    """(where, pattern) for every `pattern` and every `patternProperties` key in the document."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    found.append((where, value))
                elif key == "patternProperties" and isinstance(value, dict):
                    found.extend((f"{where}/patternProperties", name) for name in value)
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}/{index}")

    walk(json.loads(OPENAPI.read_text()), "#")
    return found


PATTERNS = sorted({pattern for _, pattern in contract_patterns()})


# --------------------------------------------------------------------------------- a reader of the common core
@dataclass
class Atom:
    kind: str  # "char", "class" or "group"
    ranges: list[tuple[int, int]] = field(default_factory=list)  # char and class: code point ranges
    negated: bool = False
    alternatives: list[list[Item]] = field(default_factory=list)  # group


@dataclass
class Item:
    atom: Atom
    least: int
    most: int | None


class Reader:
    """Reads a pattern as ECMA-262 does, noting every construct outside the common core (`problems`) and
    writing the pattern's ECMA-262 meaning as a Python regex (`ecma`)."""

    def __init__(self, pattern: str) -> None:
        self.pattern, self.at, self.ecma = pattern, 0, ""
        self.problems: list[str] = []
        self.tree = self.alternatives(depth=0)
        if self.at < len(pattern):
            self.problem(f"unbalanced ')' at {self.at}")

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def peek(self, ahead: int = 0) -> str:
        return self.pattern[self.at + ahead] if self.at + ahead < len(self.pattern) else ""

    def take(self) -> str:
        self.at += 1
        return self.pattern[self.at - 1]

    def alternatives(self, depth: int) -> list[list[Item]]:
        branches = [self.sequence(depth)]
        while self.peek() == "|":
            if depth == 0:
                self.problem("'|' outside a group: ^ and $ then anchor one alternative each")
            self.ecma += self.take()
            branches.append(self.sequence(depth))
        return branches

    def sequence(self, depth: int) -> list[Item]:
        items: list[Item] = []
        while self.peek() and self.peek() not in "|)":
            atom = self.atom(depth)
            if atom is not None:
                items.append(self.quantified(atom))
        return items

    def atom(self, depth: int) -> Atom | None:
        start, c = self.at, self.take()
        if c in "^$":
            self.anchor(c, start)
            return None
        if c == ".":
            self.problem("'.': each dialect excludes other line terminators")
            self.ecma += r"[^\n\r\u2028\u2029]"
            return Atom("class", [(10, 10), (13, 13), (0x2028, 0x2029)], negated=True)
        if c == "(":
            return self.group(depth)
        if c == "[":
            return self.char_class()
        if c == "\\":
            return self.escape(in_class=False)
        if c in "{}]":
            self.problem(f"unescaped {c!r}: a literal in some dialects, an error in others")
        elif c in "*+?":
            self.problem(f"{c!r} with nothing to repeat")
        self.literal(c)
        return Atom("char", [(ord(c), ord(c))])

    def anchor(self, c: str, start: int) -> None:
        if c == "^":
            if start != 0:
                self.problem("'^' other than at the start")
            self.ecma += r"\A"
        else:
            if self.at != len(self.pattern):
                self.problem("'$' other than at the end")
            self.ecma += r"\Z"  # ECMA-262 without the m flag: the end of the input, never before a newline

    def group(self, depth: int) -> Atom:
        """After its '(': a group, capturing or not (lookarounds, named groups and flags are refused)."""
        if self.peek() == "?":
            if self.peek(1) != ":":
                self.problem("'(?' other than '(?:': lookarounds, named groups and flags are not in every dialect")
            self.ecma += "(" + self.take() + self.take()
        else:
            self.ecma += "("
        group = Atom("group", alternatives=self.alternatives(depth + 1))
        if self.peek() != ")":
            self.problem("unbalanced '('")
        else:
            self.ecma += self.take()
        return group

    def literal(self, c: str) -> None:
        if not " " <= c <= "~":
            self.problem(f"literal U+{ord(c):04X}: write \\uXXXX (printable ASCII only)")
        self.ecma += re.escape(c)

    def escape(self, in_class: bool) -> Atom:
        c = self.take() if self.peek() else ""
        if c.lower() in ECMA_SHORTHANDS:
            self.problem(f"'\\{c}': each dialect has its own set")
            inside = ECMA_SHORTHANDS[c.lower()]
            self.ecma += inside if in_class else f"[{'^' if c.isupper() else ''}{inside}]"
            sample = {"s": (32, 32), "d": (48, 57), "w": (97, 122)}[c.lower()]
            return Atom("class", [sample], negated=c.isupper())
        if c in "bB":
            self.problem(f"'\\{c}': a word boundary (or backspace) on each dialect's own \\w")
            self.ecma += r"\x08" if in_class else rf"(?a:\{c})"
            return Atom("char", [(8, 8)])
        if c in CONTROL_ESCAPES:
            self.ecma += "\\" + c
            code = ord({"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v"}[c])
            return Atom("char", [(code, code)])
        if c in "xu":
            digits = 2 if c == "x" else 4
            text = self.pattern[self.at : self.at + digits]
            if not re.fullmatch(f"[0-9A-Fa-f]{{{digits}}}", text):
                self.problem(f"'\\{c}' without {digits} hex digits")
                self.ecma += re.escape(c)
                return Atom("char", [(ord(c), ord(c))])
            self.at += digits
            code = int(text, 16)
            if 0xD800 <= code <= 0xDFFF:
                self.problem(f"'\\u{text}': a surrogate means one thing with the u flag and another without")
            self.ecma += f"\\{c}{text}"
            return Atom("char", [(code, code)])
        if c in SYNTAX or (in_class and c == "-"):
            self.ecma += re.escape(c)
            return Atom("char", [(ord(c), ord(c))])
        self.problem(f"'\\{c}': not an escape every dialect reads alike")
        self.ecma += re.escape(c)
        return Atom("char", [(ord(c), ord(c))] if c else [])

    def class_member(self) -> Atom:
        if self.peek() == "\\":
            self.take()
            return self.escape(in_class=True)
        c = self.take()
        if c == "[":
            self.problem("'[' inside a class: a nested class in Rust (and ECMA-262's v mode), a literal elsewhere")
        if c in "&-~|" and self.peek() == c:
            self.problem(f"'{c}{c}' inside a class: a set operation in Rust (and ECMA-262's v mode)")
        self.literal(c)
        return Atom("char", [(ord(c), ord(c))])

    def char_class(self) -> Atom:
        self.ecma += "["
        atom = Atom("class", negated=self.peek() == "^")
        if atom.negated:
            self.ecma += self.take()
        if self.peek() == "]":
            self.problem("'[]' or '[^]': empty or anything in ECMA-262, a literal ']' elsewhere")
        while self.peek() != "]":
            if not self.peek():
                self.problem("unterminated class")
                return atom
            low = self.class_member()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.ecma += self.take()
                high = self.class_member()
                if low.kind != "char" or high.kind != "char" or low.ranges[0][0] > high.ranges[0][0]:
                    self.problem("a class range that is not from one character up to another")
                else:
                    atom.ranges.append((low.ranges[0][0], high.ranges[0][0]))
            else:
                atom.ranges.extend(low.ranges)
        self.ecma += self.take()
        return atom

    def quantified(self, atom: Atom) -> Item:
        least: int = 1
        most: int | None = 1
        c = self.peek()
        if c in ("*", "+", "?"):
            self.ecma += self.take()
            least, most = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        elif c == "{":
            bounds = re.match(r"\{([0-9]+)(,([0-9]*))?\}", self.pattern[self.at :])
            if bounds is None:
                self.problem("unescaped '{': a literal in some dialects, an error in others")
            else:
                self.ecma += bounds.group(0)
                self.at += len(bounds.group(0))
                least = int(bounds.group(1))
                most = least if bounds.group(2) is None else int(bounds.group(3)) if bounds.group(3) else None
        if self.at > 0 and self.pattern[self.at - 1] in "*+?}" and self.peek() in ("+", "*", "{"):
            self.problem("a quantifier on a quantifier (possessive in Python, an error elsewhere)")
        if self.peek() == "?" and self.pattern[self.at - 1] in "*+?}":
            self.ecma += self.take()  # lazy: the same in every dialect
        if atom.kind == "class" and atom.negated and not (most is None and least <= 1):
            self.problem(
                "a negated class not quantified by + or *: without the u flag ECMA-262 counts a character outside "
                "the BMP as two (bound the length with minLength/maxLength instead)"
            )
        return Item(atom, least, most)


def sample(items: list[Item]) -> str:
    """A string the pattern matches: each item once (or its least count), the first alternative of a group."""
    out = ""
    for item in items:
        times = max(item.least, 1) if item.most is None or item.most >= 1 else 0
        atom = item.atom
        if atom.kind == "group":
            one = sample(atom.alternatives[0])
        elif atom.negated:
            one = next(c for c in "aA0_x!~" if not any(lo <= ord(c) <= hi for lo, hi in atom.ranges))
        else:
            one = chr(atom.ranges[0][0])
        out += one * times
    return out


# --------------------------------------------------------------------------------- the judges
def utf16_units(text: str) -> str:
    """The string as an ECMA-262 engine without the u flag sees it: a character outside the BMP as two surrogates."""
    units = text.encode("utf-16-le", "surrogatepass")
    return "".join(chr(int.from_bytes(units[i : i + 2], "little")) for i in range(0, len(units), 2))


@cache
def server_validator(pattern: str) -> TypeAdapter[str] | None:
    try:
        return TypeAdapter(Annotated[str, StringConstraints(pattern=pattern)])
    except SchemaError:  # pydantic's Rust engine refuses the pattern: look-around, backreferences
        return None


def verdicts(pattern: str, text: str) -> dict[str, bool | None]:
    """Whether each reader accepts `text`; None where it cannot read the pattern at all."""
    out: dict[str, bool | None] = {}
    validator = server_validator(pattern)
    if validator is None:
        out["server (pydantic)"] = None
    else:
        try:
            validator.validate_python(text)
            out["server (pydantic)"] = True
        except ValidationError:
            out["server (pydantic)"] = False
    try:
        out["python re.fullmatch"] = re.fullmatch(pattern, text) is not None
    except re.error:
        out["python re.fullmatch"] = None
    ecma = Reader(pattern).ecma
    try:
        out["ECMA-262 u"] = re.search(ecma, text) is not None
        out["ECMA-262"] = re.search(ecma, utf16_units(text)) is not None
    except re.error:
        out["ECMA-262 u"] = out["ECMA-262"] = None
    return out


# Where the dialects part: line ends, every dialect's whitespace, controls, non-ASCII digits and letters (some
# case-fold onto ASCII), a character outside the BMP.
TRICKY = [
    "\n", "\r", "\r\n", "\t", "\x0b", "\x0c", "\x1c", "\x1f", " ", "\x00", "\x7f",
    "\x85", "\xa0", "\u1680", "\u2007", "\u200b", "\u2028", "\u2029", "\u202f", "\u3000", "\ufeff",
    "\u0663", "\u00b2", "\uff11", "\u00df", "\u017f", "\u212a", "\u0130", "\u00e9", "\uff21", "\U0001f600",
]  # fmt: skip


def variants(base: str) -> Iterator[str]:
    """The base, and each tricky character put before, after, in place of and between its characters."""
    yield base
    for c in TRICKY:
        yield c + base
        yield base + c
        for i in range(1, len(base)):
            yield base[:i] + c + base[i:]
        for i in range(len(base)):
            yield base[:i] + c + base[i + 1 :]


def disagreements(pattern: str) -> list[str]:
    base = sample(Reader(pattern).tree[0])
    found = []
    for text in variants(base):
        said = verdicts(pattern, text)
        if len(set(said.values())) > 1:
            found.append(f"{text!r}: {said}")
    return found


# --------------------------------------------------------------------------------- the tests
def test_the_document_has_patterns_and_pattern_properties() -> None:
    places = contract_patterns()
    assert any("patternProperties" in where for where, _ in places)
    assert any("/parameters/" in where for where, _ in places)
    assert len(PATTERNS) >= 10


@pytest.mark.parametrize("pattern", PATTERNS)
def test_patterns_keep_to_the_common_core(pattern: str) -> None:
    reader = Reader(pattern)
    assert not reader.problems, reader.problems
    assert pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$")


@pytest.mark.parametrize("pattern", PATTERNS)
def test_server_and_contract_agree(pattern: str) -> None:
    base = sample(Reader(pattern).tree[0])
    assert all(verdicts(pattern, base).values()), f"the sample {base!r} should match"
    found = disagreements(pattern)
    assert not found, "\n".join(found[:20])


# The readers themselves: what they must catch, among it the patterns this test was written for.
REFUSED = [
    r"^https://[^\s]{1,2000}$",
    r"^[^@\s]+@[^@\s]+$",
    r"^\d{4}$",
    r"^\w+$",
    r"^a.b$",
    r"^a\b$",
    r"^(?=a)a$",
    r"^(?i)a$",
    r"^(?P<x>a)$",
    r"^[a-z&&[^x]]$",
    r"^[a--b]$",
    r"^a$|^b$",
    r"abc",
    r"^abc",
    r"^[^a]{1,3}$",
    r"^[^a]$",
    "^\u00e9$",
    r"^\p{L}$",
    r"^a\Z",
    r"^a{2$",
    r"^a++$",
    r"^[]a]$",
    r"^\ud800$",
]


@pytest.mark.parametrize("pattern", REFUSED)
def test_the_core_check_refuses(pattern: str) -> None:
    reader = Reader(pattern)
    anchored = pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$")
    assert reader.problems or not anchored


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (r"^https://[^\s]{1,2000}$", "https://x\x85"),  # whitespace to Python and Rust, not to ECMA-262
        (r"^https://[^\s]{1,2000}$", "https://x\ufeff"),  # whitespace to ECMA-262 only
        (r"^[^@\s]+@[^@\s]+$", "a\x1c@b"),  # whitespace to Python only
        (r"^[0-9]\d$", "1\u0663"),  # an Arabic-Indic three: a digit to Python and Rust, not to ECMA-262
        (r"^[^a]$", "\U0001f600"),  # one character, or two UTF-16 units
    ],
)
def test_the_behaviour_check_sees_the_dialects_part(pattern: str, text: str) -> None:
    assert len(set(verdicts(pattern, text).values())) > 1
