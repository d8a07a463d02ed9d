"""Load YAML configuration into pydantic models with errors that point at the file.

Scenario files are written by policy analysts, not programmers: a mistake in
one must come back as ``FILE:LINE: KEY.PATH: message`` lines they can act on,
never as a traceback.  To get there we keep the YAML node tree (which knows
the line of every key) next to the plain data, and translate pydantic's error
locations back into those lines.

Only ``yaml.SafeLoader`` is used, so the data is exactly what
``yaml.safe_load`` would give (YAML dates become ``datetime.date``).
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import pydantic
import yaml
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["ConfigError", "format_problem", "load_yaml", "locate_error", "validate"]

Problem = tuple[str, int | None, str, str]
"""(file, 1-based line or None, dotted key path or '', message)."""

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_ABSENT = object()


def format_problem(file: str, line: int | None, key: str, message: str) -> str:
    """One problem as 'FILE:LINE: KEY: message', the form editors can jump to."""
    where = file if line is None else f"{file}:{line}"
    return f"{where}: {key}: {message}" if key else f"{where}: {message}"


class ConfigError(Exception):
    """One or more problems in a configuration file.

    ``str()`` is one line per problem, ``FILE:LINE: KEY.PATH: message``, so a
    command-line tool can print it as is instead of a traceback.
    """

    problems: list[tuple[str, int | None, str, str]]

    def __init__(self, problems: Iterable[tuple[str, int | None, str, str]]) -> None:
        self.problems = list(problems)
        # Keep the problems as the only argument so the error pickles and
        # crosses process boundaries intact.
        super().__init__(self.problems)

    def __str__(self) -> str:
        return "\n".join(format_problem(*problem) for problem in self.problems)


# --------------------------------------------------------------------------
# Loading


def load_yaml(path: str | pathlib.Path) -> tuple[Any, dict[tuple, int]]:
    """Read a YAML mapping and the 1-based line of every key path in it.

    The line map takes key paths such as ``("models", 0, "params", "rate")``:
    for a mapping key the line of the key, for a list item the line of the
    item; ``()`` is line 1.  PyYAML silently keeps the last of duplicated
    keys, which hides typos, so duplicates are reported as errors here.
    """
    file = str(path)
    text = _read_text(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(file, text, exc)]) from None
    if node is None:
        raise ConfigError([(file, None, "", "the file is empty; expected a mapping of keys")])
    if not isinstance(node, MappingNode):
        kind = "a list" if isinstance(node, SequenceNode) else "a single value"
        raise ConfigError(
            [(file, _line(node), "", f"the top level must be a mapping of keys, not {kind}")]
        )

    keys = yaml.SafeLoader("")  # a constructor for keys only, separate from the document's
    duplicates = list(_duplicate_keys(node, keys, file))
    if duplicates:
        raise ConfigError(duplicates)

    # An instance of SafeLoader itself (not SafeConstructor) so constructors
    # registered on SafeLoader apply, exactly as in yaml.safe_load.
    constructor = yaml.SafeLoader("")
    try:
        data = constructor.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(file, text, exc)]) from None
    except (ValueError, OverflowError) as exc:
        # e.g. a date such as 2024-13-01 matches YAML's timestamp pattern but
        # is not a date; PyYAML raises without a mark, so find the node.
        raise ConfigError([_bad_scalar(file, node, keys, exc)]) from None

    lines: dict[tuple, int] = {(): 1}
    # Walk after construction: merge keys ('<<') have been flattened into
    # their mappings by then, so the walk sees the keys the data has.
    for key_path, line in _key_lines(node, keys):
        lines[key_path] = line
    return data, lines


def _read_text(file: str) -> str:
    """The file's text, decoded the way PyYAML would (UTF-8, or UTF-16 by BOM)."""
    try:
        raw = pathlib.Path(file).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([(file, None, "", f"cannot read the file: {reason}")]) from None
    encoding = "utf-16" if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = f"the file is not valid {encoding.removesuffix('-sig').upper()} text ({exc.reason})"
        raise ConfigError([(file, line, "", message)]) from None


def _yaml_problem(file: str, text: str, exc: yaml.YAMLError) -> Problem:
    """A PyYAML error as a problem, with the line of its mark."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        if isinstance(exc.character, int):
            return (file, line, "", f"{exc.reason}: character #x{exc.character:04x}")
        return (file, line, "", str(exc.reason))
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            context = exc.context
            if exc.context_mark is not None and mark is not None and exc.context_mark.line != mark.line:
                context += f" that starts on line {exc.context_mark.line + 1}"
            # ComposerError reads "expected a single document ..., but found another document".
            message = f"{context}, {exc.problem}" if exc.problem.startswith("but ") else f"{exc.problem} ({context})"
        return (file, None if mark is None else mark.line + 1, "", message)
    return (file, None, "", str(exc))


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _key_of(node: Node, keys: yaml.SafeLoader) -> Any:
    """The Python value of a scalar mapping key, or _ABSENT if it has none."""
    if not isinstance(node, ScalarNode) or node.tag == _MERGE_TAG:
        return _ABSENT
    try:
        key = keys.construct_object(node, deep=True)
        hash(key)
    except (yaml.YAMLError, ValueError, OverflowError, TypeError):
        return _ABSENT  # document construction will report it with a mark
    return key


def _children(node: Node, keys: yaml.SafeLoader) -> Iterator[tuple[Any, Node, Node]]:
    """(key or index, node giving the line, child node) for a collection node."""
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            key = _key_of(key_node, keys)
            if key is not _ABSENT:
                yield key, key_node, value_node
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield index, item, item


def _walk(
    node: Node, keys: yaml.SafeLoader, seen: set[int] | None = None, prefix: tuple = ()
) -> Iterator[tuple[tuple, Node, Node]]:
    """Every (key path, node giving the line, child node) below node.

    A node reached again through an alias is not entered a second time: that
    keeps recursive and 'billion laughs' documents finite, and errors under
    the second use then point at the alias.
    """
    if seen is None:
        seen = set()
    if id(node) in seen:
        return
    seen.add(id(node))
    for key, line_node, child in _children(node, keys):
        key_path = (*prefix, key)
        yield key_path, line_node, child
        yield from _walk(child, keys, seen, key_path)


def _key_lines(node: Node, keys: yaml.SafeLoader) -> Iterator[tuple[tuple, int]]:
    for key_path, line_node, _child in _walk(node, keys):
        yield key_path, _line(line_node)


def _duplicate_keys(root: MappingNode, keys: yaml.SafeLoader, file: str) -> Iterator[Problem]:
    """Keys given twice in one mapping (before '<<' merges, which may override)."""
    mappings: list[tuple[tuple, MappingNode]] = [((), root)]
    mappings += [(p, child) for p, _line_node, child in _walk(root, keys) if isinstance(child, MappingNode)]
    seen_nodes: set[int] = set()
    for prefix, mapping in mappings:
        if id(mapping) in seen_nodes:
            continue
        seen_nodes.add(id(mapping))
        first: dict[Any, int] = {}
        for key_node, _value in mapping.value:
            key = _key_of(key_node, keys)
            if key is _ABSENT:
                continue
            if key in first:
                yield (
                    file,
                    _line(key_node),
                    _format_path(_shown(root, keys, (*prefix, key))),
                    f"duplicate key (first given on line {first[key]})",
                )
            else:
                first[key] = _line(key_node)


def _shown(root: Node, keys: yaml.SafeLoader, key_path: tuple) -> list[tuple[Any, bool]]:
    """Key path entries tagged with whether each is a list index, read from the nodes."""
    shown: list[tuple[Any, bool]] = []
    node: Node | None = root
    for entry in key_path:
        is_index = isinstance(node, SequenceNode)
        shown.append((entry, is_index))
        child = None
        if node is not None:
            for key, _line_node, value in _children(node, keys):
                if key == entry:
                    child = value
        node = child
    return shown


def _bad_scalar(file: str, root: MappingNode, keys: yaml.SafeLoader, exc: Exception) -> Problem:
    """Find the scalar PyYAML could not construct and report it with its line."""
    for key_path, _line_node, child in _walk(root, keys):
        if not isinstance(child, ScalarNode):
            continue
        try:
            yaml.SafeLoader("").construct_object(child, deep=True)
        except (ValueError, OverflowError) as scalar_exc:
            message = f"cannot read the value {child.value!r}: {scalar_exc}"
            return (file, _line(child), _format_path(_shown(root, keys, key_path)), message)
        except yaml.YAMLError:
            continue
    return (file, None, "", f"cannot read the file: {exc}")


# --------------------------------------------------------------------------
# Validation


def validate(model: type[ModelT], path: str | pathlib.Path) -> ModelT:
    """Load a YAML file into model, turning every validation error into a located problem."""
    file = str(path)
    data, lines = load_yaml(path)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [_validation_problem(file, data, lines, error) for error in exc.errors()]
    problems.sort(key=lambda problem: (problem[1] is None, problem[1] or 0))
    raise ConfigError(problems)


def locate_error(file: str, data: Any, lines: dict[tuple, int], error: ErrorDetails, prefix: tuple = ()) -> Problem:
    """A pydantic error as a located problem; ``prefix`` places a part validated on its own (e.g. one model's params) in the file."""
    return _validation_problem(file, data, lines, {**error, "loc": (*prefix, *error["loc"])})


def _validation_problem(file: str, data: Any, lines: dict[tuple, int], error: ErrorDetails) -> Problem:
    missing = error["type"] == "missing"
    real, shown = _resolve_loc(data, error["loc"], missing)
    line = next((lines[real[:n]] for n in range(len(real), -1, -1) if real[:n] in lines), None)
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif missing:
        message = "required key is missing"
    else:
        message = error["msg"]
    return (file, line, _format_path(shown), message)


def _resolve_loc(
    data: Any, loc: Sequence[Any], missing: bool
) -> tuple[tuple, list[tuple[Any, bool]]]:
    """Split a pydantic loc into the key path present in the data and the path to show.

    pydantic puts union branch names in loc ('function-after[...]', a model
    class name, a discriminator tag): entries that are not keys or indexes of
    the data are such labels and are dropped, except the last entry of a
    'missing' error, which is the absent key itself.
    """
    real: list[Any] = []
    shown: list[tuple[Any, bool]] = []
    current = data
    for position, entry in enumerate(loc):
        is_last = position == len(loc) - 1
        if isinstance(current, dict):
            key = _match_key(current, entry)
            if key is not _ABSENT:
                real.append(key)
                shown.append((key, False))
                current = current[key]
                continue
        elif isinstance(current, list) and isinstance(entry, int) and not isinstance(entry, bool):
            if 0 <= entry < len(current):
                real.append(entry)
                shown.append((entry, True))
                current = current[entry]
                continue
        if is_last and missing:
            shown.append((entry, isinstance(current, list) and isinstance(entry, int)))
    return tuple(real), shown


def _match_key(mapping: dict[Any, Any], entry: Any) -> Any:
    """The data key loc entry names, allowing for keys pydantic turned into strings."""
    try:
        if entry in mapping:
            return entry
    except TypeError:
        return _ABSENT
    if isinstance(entry, str):
        for key in mapping:
            if not isinstance(key, str) and str(key) == entry:
                return key
    return _ABSENT


def _format_path(shown: Sequence[tuple[Any, bool]]) -> str:
    """'models[0].params.rate' from key path entries tagged as list index or not."""
    out = ""
    for entry, is_index in shown:
        if is_index:
            out += f"[{entry}]"
        else:
            out += f".{entry}" if out else str(entry)
    return out
