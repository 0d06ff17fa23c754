"""registry.yaml text → a validated Registry, or a RegistryError listing every problem.

Three passes, all problems collected before anything is raised:
1. YAML with positions (`loader.py`); duplicate keys are problems.
2. Shape (`models.py`, pydantic); its errors are translated into located messages.
   Definitions that fail are set aside, and the rest is validated again so that
3. cross-references (`checks.py`) are still checked for everything that is well formed,
   without reporting "unknown source" for a source that merely has a typo inside.
"""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from featurestore.errors import RegistryError
from featurestore.registry.checks import Broken, run_checks
from featurestore.registry.loader import YamlDocument, load_yaml
from featurestore.registry.models import Registry, describe_value
from featurestore.registry.problems import KeyPath, Problem, format_path, service_list_path
from featurestore.registry.suggestions import closest_name, did_you_mean

REGISTRY_FILE_NAME = "registry.yaml"

_SECTIONS = ("entities", "sources", "feature_views", "request_views", "services")

# What a pydantic type error expected, in the words of the registry format.
_EXPECTED = {
    "string_type": "text",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}


def resolve_registry_path(path: str | os.PathLike[str]) -> Path:
    """The registry file for `path`: the path itself, or `registry.yaml` inside a folder."""
    candidate = Path(path)
    if candidate.is_dir():
        return candidate / REGISTRY_FILE_NAME
    return candidate


def load_registry(path: str | os.PathLike[str]) -> tuple[Registry, str]:
    """Read and validate a registry file.

    Args:
        path: the file, or a folder holding registry.yaml. Messages name the file as
            given here, so a relative path gives relative names.

    Returns:
        The validated registry and the file's text.

    Raises:
        RegistryError: the file cannot be read or is invalid (every problem listed).
    """
    file = resolve_registry_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegistryError([f"{file}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise RegistryError([f"{file}: cannot read: {error}"]) from None
    return parse_registry(text, str(file)), text


def parse_registry(text: str, file_name: str = REGISTRY_FILE_NAME) -> Registry:
    """Validate registry text.

    Args:
        text: the YAML text.
        file_name: how messages name the file.

    Returns:
        The validated Registry.

    Raises:
        RegistryError: with one `file:LINE:COL: path: message` line per problem, in
            file order.
    """
    try:
        document = load_yaml(text)
    except yaml.MarkedYAMLError as error:
        raise RegistryError([_yaml_problem(error).format(file_name)]) from None
    problems = list(document.problems)
    if not isinstance(document.data, dict):
        got = "an empty file" if document.data is None else describe_value(document.data)
        problems.append(Problem(1, 1, "", f"expected a mapping with 'project' and more, got {got}"))
        raise RegistryError([problem.format(file_name) for problem in problems])
    registry, broken, shape_problems = _validate_shape(document.data, document)
    problems.extend(shape_problems)
    if registry is not None:
        problems.extend(run_checks(registry, document, broken))
    if problems:
        raise RegistryError([problem.format(file_name) for problem in sorted(set(problems))])
    if registry is None:
        raise RegistryError([f"{file_name}: invalid registry"])
    return registry


def _yaml_problem(error: yaml.MarkedYAMLError) -> Problem:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return Problem(line, column, "", f"invalid YAML: {error.problem or error.context}")


def _validate_shape(
    data: dict[str, Any], document: YamlDocument
) -> tuple[Registry | None, Broken, list[Problem]]:
    """Validate with pydantic; on errors, also return the well-formed part for checks."""
    try:
        return Registry.model_validate(data), Broken(), []
    except ValidationError as error:
        errors = error.errors()
    problems = [_translate(detail, document) for detail in errors]
    broken = Broken()
    pruned = data
    # First set aside single features and request fields; if what is left still does
    # not validate (a view left with no features), set aside whole definitions.
    for fine in (True, False, False):
        pruned = _set_aside(pruned, errors, broken, fine)
        try:
            return Registry.model_validate(pruned), broken, problems
        except ValidationError as error:
            errors = error.errors()
    # The well-formed part could not stand alone; report the shape problems only.
    return None, broken, problems


def _set_aside(
    data: dict[str, Any], errors: list[ErrorDetails], broken: Broken, fine: bool
) -> dict[str, Any]:
    """A copy of `data` without the definitions that have shape errors (recorded in
    `broken`). With `fine`, only the failing feature or request field of a view goes."""
    pruned = dict(data)
    for detail in errors:
        loc = tuple(str(part) for part in detail["loc"])
        top = loc[0] if loc else None
        if fine and _set_aside_member(pruned, loc, broken):
            continue
        if top in _SECTIONS and len(loc) >= 2 and isinstance(pruned.get(top), dict):
            section = dict(pruned[top])
            section.pop(loc[1], None)
            pruned[top] = section
            broken.add(top, loc[1])
        elif top in _SECTIONS:
            pruned[top] = {}
            broken.add(top, None)
        elif top == "project":
            pruned["project"] = "project"
        elif top is not None:
            pruned.pop(top, None)
            # A misspelled section hides its definitions: do not call them unknown.
            section_meant = closest_name(top, _SECTIONS)
            if section_meant is not None:
                broken.add(section_meant, None)
    return pruned


def _set_aside_member(pruned: dict[str, Any], loc: tuple[str, ...], broken: Broken) -> bool:
    """Remove one feature or request field of a view; False if `loc` is not inside one."""
    if len(loc) < 4 or loc[0] not in ("feature_views", "request_views", "services"):
        return False
    if loc[-1] == "[key]":
        # An invalid name may be the name other definitions use: hide the whole view.
        return False
    if loc[2] not in (("transforms",) if loc[0] == "services" else ("features", "request")):
        return False
    section = pruned.get(loc[0])
    view = section.get(loc[1]) if isinstance(section, dict) else None
    members = view.get(loc[2]) if isinstance(view, dict) else None
    if not isinstance(members, dict):
        return False
    members = {key: value for key, value in members.items() if key != loc[3]}
    pruned[loc[0]] = {**section, loc[1]: {**view, loc[2]: members}}
    broken.add(loc[0], loc[1], f"{loc[2]}.{loc[3]}")
    return True


def _translate(detail: ErrorDetails, document: YamlDocument) -> Problem:
    """Turn one pydantic error into a located problem in the registry's own words."""
    loc: KeyPath = service_list_path(tuple(detail["loc"]), document.data)
    kind = detail["type"]
    if loc and loc[-1] == "[key]":
        path, position, message = loc[:-1], document.key_position(loc[:-1]), detail["msg"]
    elif kind == "missing":
        path, position = loc[:-1], document.key_position(loc[:-1])
        message = f"missing required key '{loc[-1]}'"
    elif kind == "extra_forbidden":
        key = str(loc[-1])
        path, position = loc, document.key_position(loc)
        message = f"unknown key '{key}'{did_you_mean(key, _allowed_keys(loc[:-1]))}"
    elif kind in _EXPECTED:
        path, position = loc, document.value_position(loc)
        message = f"expected {_EXPECTED[kind]}, got {describe_value(detail['input'])}"
    else:
        path, message = loc, detail["msg"]
        # A rule about a whole definition points at its name, not at its first key.
        whole = isinstance(detail["input"], dict)
        position = document.key_position(loc) if whole else document.value_position(loc)
    return Problem(position.line, position.column, format_path(path), message)


def _allowed_keys(loc: KeyPath) -> list[str]:
    """The keys the model at `loc` accepts, found by walking the model annotations."""
    annotation: Any = Registry
    for part in loc:
        annotation = _child_annotation(_unwrap(annotation), part)
        if annotation is None:
            return []
    model = _unwrap(annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _child_annotation(annotation: Any, part: str | int) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return field.annotation if field is not None else None
    origin = get_origin(annotation)
    if origin is dict:
        return get_args(annotation)[1]
    if origin in (list, tuple):
        return get_args(annotation)[0]
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip `Annotated[...]` and `X | None` down to the type underneath."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
        else:
            return annotation
