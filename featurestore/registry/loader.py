"""Read registry.yaml into plain Python data while remembering where every key sits.

PyYAML's composer gives nodes with start marks; constructing the data from those
nodes ourselves (instead of `yaml.safe_load`) keeps the line and column of every key
and value, and lets us reject duplicate keys, which `safe_load` silently overwrites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from featurestore.registry.problems import KeyPath, Problem, format_path

_QUOTE_STYLES = ("'", '"')


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in the file."""

    line: int
    column: int


@dataclass(frozen=True)
class _ValueSpan:
    """Where a value starts, and whether offsets inside it map one-to-one onto the file.

    A plain or quoted scalar on one line without escapes maps exactly: character `i`
    of the value sits at `column + opening + i`. Block scalars and escaped text do not.
    """

    position: Position
    opening: int
    exact: bool


@dataclass
class YamlDocument:
    """The data of a YAML file, the position of every key and value, and load problems.

    Attributes:
        data: the document as dicts, lists and scalars (mapping keys are always str).
        problems: mistakes found while reading (duplicate keys, non-text keys).
    """

    data: Any
    problems: list[Problem] = field(default_factory=list)
    _keys: dict[KeyPath, Position] = field(default_factory=dict)
    _values: dict[KeyPath, _ValueSpan] = field(default_factory=dict)

    def key_position(self, path: KeyPath) -> Position:
        """Position of the key that names `path` (or of the closest enclosing key)."""
        for depth in range(len(path), 0, -1):
            prefix = path[:depth]
            if prefix in self._keys:
                return self._keys[prefix]
            if prefix in self._values:
                return self._values[prefix].position
        return Position(1, 1)

    def value_position(self, path: KeyPath) -> Position:
        """Position where the value at `path` starts (or of the closest enclosing key)."""
        span = self._values.get(path)
        return span.position if span is not None else self.key_position(path)

    def text_position(self, path: KeyPath, offset: int) -> Position:
        """Position of character `offset` inside the text value at `path`.

        Falls back to the start of the value when the scalar is written in a way whose
        characters do not map one-to-one onto the file (block scalars, escapes).
        """
        span = self._values.get(path)
        if span is None:
            return self.key_position(path)
        if not span.exact:
            return span.position
        return Position(span.position.line, span.position.column + span.opening + offset)


# libyaml's parser is about ten times faster than the pure-Python one; its marks carry the
# same lines, columns and character indexes.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> YamlDocument:
    """Parse YAML text into a YamlDocument.

    Args:
        text: the whole file.

    Returns:
        The document; duplicate keys are reported in `problems` (the first occurrence
        is kept so validation can go on and report everything else too).

    Raises:
        yaml.MarkedYAMLError: the text is not YAML at all (the caller locates it).
    """
    try:
        return _load(_LOADER, text)
    except yaml.MarkedYAMLError:
        # The pure-Python parser words its errors better ("expected <block end>, but
        # found ..."); it runs only for text that is not YAML.
        return _load(yaml.SafeLoader, text)


def _load(loader_class: type[yaml.SafeLoader], text: str) -> YamlDocument:
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        document = YamlDocument(data=None)
        if root is not None:
            document.data = _construct(loader, root, (), text, document)
        return document
    finally:
        loader.dispose()


def _position(mark: yaml.Mark) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def _record_span(node: yaml.Node, path: KeyPath, text: str, document: YamlDocument) -> None:
    start, end = node.start_mark, node.end_mark
    opening, exact = 0, False
    if isinstance(node, yaml.ScalarNode) and start.line == end.line:
        raw = text[start.index : end.index]
        if node.style in _QUOTE_STYLES:
            opening, exact = 1, raw[1:-1] == node.value
        elif node.style is None:
            exact = raw == node.value
    document._values[path] = _ValueSpan(_position(start), opening, exact)


def _construct(
    loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, text: str, document: YamlDocument
) -> Any:
    _record_span(node, path, text, document)
    if isinstance(node, yaml.MappingNode):
        return _construct_mapping(loader, node, path, text, document)
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(loader, item, (*path, index), text, document)
            for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node)


def _construct_mapping(
    loader: yaml.SafeLoader,
    node: yaml.MappingNode,
    path: KeyPath,
    text: str,
    document: YamlDocument,
) -> dict[str, Any]:
    # Resolves `<<: *anchor` merge keys the way safe_load would.
    loader.flatten_mapping(node)
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key_position = _position(key_node.start_mark)
        if not isinstance(key_node, yaml.ScalarNode):
            document.problems.append(
                Problem(key_position.line, key_position.column, "", "keys must be plain names")
            )
            continue
        # Keys are names: keep the text as written (`yes`, `1` stay strings).
        key = key_node.value
        key_path = (*path, key)
        if key in result:
            first = document._keys[key_path]
            document.problems.append(
                Problem(
                    key_position.line,
                    key_position.column,
                    format_path(key_path),
                    f"duplicate key '{key}' (first defined on line {first.line})",
                )
            )
            continue
        document._keys[key_path] = key_position
        result[key] = _construct(loader, value_node, key_path, text, document)
    return result
