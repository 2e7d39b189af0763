"""A small parser for ODL (Object Description Language) text as stored in HDF-EOS attributes.

``StructMetadata.0`` (``GROUP=SwathStructure`` … ``DimensionName="ImageLine"``) and ECS metadata such as
``coremetadata.0`` / ``productmetadata.0`` (``OBJECT = POINTINGANGLE`` … ``VALUE = 8.55``) are both ODL:
nested ``GROUP``/``OBJECT`` blocks of ``KEY = value`` statements, where a value is a quoted string, a
parenthesised list, or a bare word/number, ending with ``END``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import SceneFileError

_KEY = re.compile(r"([A-Za-z_][\w.:\-]*)[ \t]*=[ \t]*")
_SPACE = re.compile(r"(?:\s+|/\*.*?\*/)+", re.S)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?")


@dataclass
class OdlNode:
    """One GROUP or OBJECT: its ``name``, ``kind``, ``KEY = value`` statements and child blocks."""

    name: str
    kind: str
    attrs: dict = field(default_factory=dict)
    children: list = field(default_factory=list)

    @property
    def value(self):
        """The ``VALUE`` statement of an ECS metadata object (None if absent)."""
        return self.attrs.get("VALUE")

    def walk(self) -> Iterator[OdlNode]:
        """This node and every descendant, depth first, in document order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, name: str, kind: str | None = None) -> OdlNode | None:
        """First descendant (or self) called ``name`` (case-insensitive), optionally of ``kind``."""
        wanted = name.upper()
        for node in self.walk():
            if node.name.upper() == wanted and (kind is None or node.kind == kind):
                return node
        return None


def _scalar(token: str):
    """Bare ODL word → int, float or str (quoted strings keep their text without quotes)."""
    if token.startswith('"') and token.endswith('"') and len(token) >= 2:
        return token[1:-1]
    if _NUMBER.fullmatch(token):
        text = token.replace("d", "e").replace("D", "e")
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    return token


def _unquoted(text: str, start: int = 0):
    """(index, char, depth) of each character outside double quotes; depth = parentheses open around it."""
    depth, quoted = 0, False
    for i in range(start, len(text)):
        char = text[i]
        if char == '"':
            quoted = not quoted
        elif not quoted:
            depth -= char == ")"
            yield i, char, depth
            depth += char == "("


def _split_list(inner: str) -> tuple:
    """Split the inside of ``( … )`` at top-level commas, honouring quotes and nested lists."""
    cuts = [i for i, char, depth in _unquoted(inner) if char == "," and depth == 0]
    items = [inner[a + 1 : b] for a, b in zip([-1] + cuts, cuts + [len(inner)])]
    values = []
    for item in (it.strip() for it in items):
        if item.startswith("("):
            values.append(_split_list(item[1:-1]))
        elif item:
            values.append(_scalar(item))
    return tuple(values)


def _value(text: str, pos: int, source) -> tuple[object, int]:
    """Parse one value starting at ``pos``; returns (value, position after it)."""
    if pos >= len(text):
        raise SceneFileError(source, "ODL statement without a value at end of text", expected="KEY = value")
    if text[pos] == '"':
        end = text.find('"', pos + 1)
        if end < 0:
            raise SceneFileError(source, f"unterminated string at character {pos}", expected="closing quote")
        return text[pos + 1 : end], end + 1
    if text[pos] == "(":
        for i, char, depth in _unquoted(text, pos):
            if char == ")" and depth == 0:
                return _split_list(text[pos + 1 : i]), i + 1
        raise SceneFileError(source, f"unbalanced parenthesis at character {pos}", expected="closing ')'")
    end = text.find("\n", pos)
    end = len(text) if end < 0 else end
    return _scalar(text[pos:end].strip()), end


def parse_odl(text: str, source="ODL text") -> OdlNode:
    """Parse ODL ``text`` into a tree rooted at a node named ``ROOT``; ``source`` names it in errors."""
    text = text.replace("\x00", "")
    root = OdlNode("ROOT", "ROOT")
    stack = [root]
    pos = 0
    while True:
        space = _SPACE.match(text, pos)
        pos = space.end() if space else pos
        if pos >= len(text) or re.match(r"END(\s|$)", text[pos : pos + 4]):
            break
        match = _KEY.match(text, pos)
        if not match:
            snippet = text[pos : pos + 40].splitlines()[0] if text[pos : pos + 40].strip() else text[pos : pos + 40]
            raise SceneFileError(source, f"cannot parse ODL near {snippet!r}", expected="KEY = value statements")
        key = match.group(1).upper()
        value, pos = _value(text, match.end(), source)
        if key in ("GROUP", "OBJECT"):
            node = OdlNode(str(value), key)
            stack[-1].children.append(node)
            stack.append(node)
        elif key in ("END_GROUP", "END_OBJECT"):
            if len(stack) == 1:
                raise SceneFileError(source, f"{key} = {value} without an open block", expected="balanced GROUP/OBJECT")
            stack.pop()
        else:
            stack[-1].attrs[key] = value
    if len(stack) != 1:
        raise SceneFileError(source, f"block {stack[-1].name} is not closed", expected="balanced GROUP/OBJECT")
    return root
