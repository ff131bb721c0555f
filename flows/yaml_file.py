"""Reading council-written YAML files (surveys, themes, cards) with errors that name the file, the field
and the line, so a comms officer can fix the file without reading a traceback."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from flows.definition import FieldProblem

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Problem:
    field: str  # dotted path, e.g. "questions[2].when.rating"
    line: int  # 1-based; the nearest line when the field itself is missing
    message: str

    def describe(self, source: str) -> str:
        return f"{source}:{self.line}: {self.field}: {self.message}"


class YamlFileError(ValueError):
    """A file that cannot be loaded; ``str()`` gives one "file:line: field: message" line per problem."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(problem.describe(source) for problem in self.problems))


@dataclass(frozen=True, slots=True)
class YamlDocument:
    root: Node
    data: dict[str, Any]
    nearest_when_missing: Mapping[str, tuple[str, ...]]  # a missing field's problem points at this one

    def problem(self, message: str, *loc: str | int) -> Problem:
        return Problem(dotted(loc), self.line_of(loc), message)

    def line_of(self, loc: Sequence[Any]) -> int:
        """The 1-based line of the deepest node ``loc`` reaches (a nearby one when the field is missing)."""
        node = self.root
        if loc and isinstance(node, MappingNode) and isinstance(loc[0], str):
            keys = {key.value for key, _ in node.value}
            if loc[0] not in keys and loc[0] in self.nearest_when_missing:
                loc = self.nearest_when_missing[loc[0]]
        for part in loc:
            child: Node | None = None
            if isinstance(node, MappingNode):
                for key, value in node.value:
                    if key.value == str(part):
                        child = value if not isinstance(value, ScalarNode) else key
                        break
            elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
                child = node.value[part]
            if child is None:
                break
            node = child
        return int(node.start_mark.line) + 1


def read_yaml(
    text: str,
    source: str,
    *,
    error: type[YamlFileError],
    expected: str,
    nearest_when_missing: Mapping[str, tuple[str, ...]] | None = None,
) -> YamlDocument:
    """Parse YAML 1.2 ("park?" inside a flow mapping is fine, and "no" stays a string)."""
    reader = YAML(typ="safe", pure=True)
    try:
        root = reader.compose(text)
        data = reader.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise error(source, [Problem("(file)", line, f"not valid YAML: {exc.problem}")]) from None
    if not isinstance(data, dict) or root is None:
        raise error(source, [Problem("(file)", 1, f"expected {expected}")])
    return YamlDocument(root, data, nearest_when_missing or {})


def validate(model: type[Model], document: YamlDocument, source: str, *, error: type[YamlFileError]) -> Model:
    """The document as ``model``, or ``error`` listing every problem by field and line."""
    try:
        return model.model_validate(document.data)
    except ValidationError as exc:
        problems = []
        for found in exc.errors():
            loc: tuple[Any, ...] = tuple(found["loc"])
            cause = (found.get("ctx") or {}).get("error")
            message = str(cause) if cause is not None else found["msg"]
            if isinstance(cause, FieldProblem):
                loc = loc + cause.loc
            problems.append(Problem(dotted(loc), document.line_of(loc), message))
        raise error(source, problems) from None


def dotted(loc: Sequence[Any]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(file)"
