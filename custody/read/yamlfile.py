"""YAML files a person writes (rule files, `_facts.yaml`, input profiles): read safely, with
the line of every value, so that an error names the file and the line.

The load refuses duplicate keys (naming the lines of both), bounds the nesting and what
aliases expand to before anything is composed, and records the line of each value by its
key path (`("detentions", "columns", "arrival_time")` -> 12). A layer's own error class (a
subclass of `YamlFileError`) is raised, so each kind of file keeps its own errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from custody.errors import InputError
from custody.read.files import not_a_regular_file

KeyPath = tuple[str | int, ...]

MAX_YAML_DEPTH = 64
MAX_YAML_VALUES = 200_000
"""Values (scalars and collections) once every alias is expanded: bounds an alias bomb."""


class YamlFileError(InputError):
    """A YAML file that cannot be used: one sentence naming the file (and line)."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.message = path, line, message


# libyaml's parser (C) when PyYAML was built with it; the pure-Python one otherwise. Both
# are the safe loader: standard YAML tags only, so a `!!python/...` tag is refused and
# nothing in a file is ever executed.
BaseLoader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = (
    yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader
)


class StrictLoader(BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader that refuses duplicate keys (naming the lines of both)."""


def construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: construct_mapping below refuses it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first on line {seen[key]})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=deep)
    return mapping


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)


def lines_of_nodes(
    node: yaml.Node, path: KeyPath = (), within: frozenset[int] = frozenset()
) -> Iterator[tuple[KeyPath, int]]:
    yield path, node.start_mark.line + 1
    if id(node) in within:  # a recursive alias (`&a [*a]`): its lines are already recorded
        return
    within |= {id(node)}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            yield from lines_of_nodes(value_node, (*path, str(key_node.value)), within)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from lines_of_nodes(item, (*path, index), within)


def read_file_bytes(path: Path, *, max_bytes: int, what: str, error: type[YamlFileError] = YamlFileError) -> bytes:
    """The bytes of a YAML file of at most `max_bytes` (`what` names the kind of file).

    Only a regular file is read: a FIFO or a device (a link to /dev/zero) is refused without
    being opened.
    """

    def too_large() -> YamlFileError:
        return error(path, f"is larger than {max_bytes:,} bytes, the most a {what} may be: check it is a {what}")

    try:
        kind = not_a_regular_file(path)
        if kind is not None:
            raise error(path, f"is {kind}, not a {what}: {what}s must be plain YAML files")
        if path.stat().st_size > max_bytes:
            raise too_large()
        with path.open("rb") as file:
            raw = file.read(max_bytes + 1)
    except OSError as exc:
        raise error(path, f"cannot be read ({exc.__class__.__name__}): check the file") from None
    if len(raw) > max_bytes:
        raise too_large()
    return raw


def _yaml_error(path: Path, exc: yaml.YAMLError, error: type[YamlFileError]) -> YamlFileError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return error(path, f"is not valid YAML: {problem}", mark.line + 1 if mark else None)


def _check_bounds(path: Path, text: str, error: type[YamlFileError]) -> None:
    """Refuse YAML nested deeper than MAX_YAML_DEPTH or whose aliases expand beyond MAX_YAML_VALUES.

    One pass over the parser's events, before anything is composed (libyaml composes
    recursively, and every later step walks aliases expanded): the expanded size of each
    anchor is counted once and added wherever an alias names it.
    """
    expanded: dict[str, int] = {}
    open_collections: list[tuple[str | None, int]] = [(None, 0)]  # (anchor, values so far)
    loader = BaseLoader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            line = event.start_mark.line + 1 if event and event.start_mark else None
            if isinstance(event, yaml.CollectionStartEvent):
                if len(open_collections) > MAX_YAML_DEPTH:
                    raise error(path, f"nests more than {MAX_YAML_DEPTH} levels deep: flatten it", line)
                open_collections.append((event.anchor, 1))
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, values = open_collections.pop()
            elif isinstance(event, yaml.ScalarEvent):
                anchor, values = event.anchor, 1
            elif isinstance(event, yaml.AliasEvent):
                # An alias of a collection still open (`&a [*a]`) is a loop: it counts once.
                anchor, values = None, expanded.get(event.anchor or "", 1)
            else:
                continue
            if anchor is not None:
                expanded[anchor] = values
            parent_anchor, parent_values = open_collections[-1]
            if parent_values + values > MAX_YAML_VALUES:
                raise error(
                    path,
                    f"expands to more than {MAX_YAML_VALUES:,} values once its aliases (*name) are expanded:"
                    " write the values out, or use fewer aliases",
                    line,
                )
            open_collections[-1] = (parent_anchor, parent_values + values)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc, error) from None
    finally:
        loader.dispose()


def parse_yaml(
    path: Path,
    raw: bytes,
    *,
    error: type[YamlFileError] = YamlFileError,
    loader_class: type[Any] = StrictLoader,
) -> tuple[Any, dict[KeyPath, int], str]:
    """Parse the bytes of a YAML file once: the data, the line of each value by key path, the text.

    The node tree is composed once by the parser, its lines recorded, and the data
    constructed from that same tree; before that, one pass over the parser's events bounds
    its depth and what its aliases expand to.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(path, f"cannot be read ({exc.__class__.__name__}): check the file") from None
    _check_bounds(path, text, error)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc, error) from None
    finally:
        loader.dispose()
    lines = dict(lines_of_nodes(node)) if node is not None else {}
    return data, lines, text


def line_of(lines: dict[KeyPath, int], location: KeyPath) -> int | None:
    """The line of the value at `location`, or of its nearest enclosing value."""
    probe = location
    while probe:
        if probe in lines:
            return lines[probe]
        probe = probe[:-1]
    return lines.get(())


def pydantic_problem(lines: dict[KeyPath, int], exc: ValidationError) -> tuple[str, int | None]:
    """The first problem pydantic found, as ("where: what", line)."""
    first = exc.errors()[0]
    location = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    message = first["msg"]
    where = ".".join(str(p) for p in location) or "(top level)"
    if first["type"] == "extra_forbidden":
        message = f"unknown key '{location[-1]}'"
        where = ".".join(str(p) for p in location[:-1]) or "(top level)"
    return f"{where}: {message}", line_of(lines, location)
